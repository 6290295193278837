//! Draws the typed-receive figures of a `shmq bench --json` report as a
//! log–log PNG: receive time (p50) against queue depth, for every mechanism
//! and selector measured (shmq and the kernel's System V queue).
//!
//! ```sh
//! cargo run --release -p shmq-cli -- bench --full --json > bench.json
//! cargo run --release -p shmq-benches --example plot_depth -- bench.json docs/typed-receive.png
//! ```
//! Text is drawn with a TrueType font found on the system (DejaVu Sans by
//! default; `PLOT_FONT=/path/to/font.ttf` picks another).

use plotters::prelude::*;
use plotters::style::FontStyle;
use serde_json::Value;

type Error = Box<dyn std::error::Error>;

fn font() -> Result<&'static [u8], Error> {
    let candidates = [
        std::env::var("PLOT_FONT").unwrap_or_default(),
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into(),
        "/usr/share/fonts/dejavu/DejaVuSans.ttf".into(),
        "/usr/share/fonts/TTF/DejaVuSans.ttf".into(),
    ];
    for c in candidates.iter().filter(|c| !c.is_empty()) {
        if let Ok(bytes) = std::fs::read(c) {
            return Ok(Box::leak(bytes.into_boxed_slice()));
        }
    }
    Err("no TrueType font found: install fonts-dejavu-core or set PLOT_FONT".into())
}

/// One curve: (mechanism, msgtyp) and its points (depth, p50 ns).
type Series = ((String, String), Vec<(f64, f64)>);

fn series(report: &Value) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for p in report["typed_receive"].as_array().into_iter().flatten() {
        let key = (
            p["mechanism"].as_str().unwrap_or("?").to_string(),
            p["msgtyp"].as_str().unwrap_or("?").to_string(),
        );
        let (Some(d), Some(ns)) = (p["depth"].as_f64(), p["p50_ns"].as_f64()) else {
            continue;
        };
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push((d, ns)),
            None => out.push((key, vec![(d, ns)])),
        }
    }
    out
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = &args[..] else {
        return Err("usage: plot_depth REPORT.json OUTPUT.png".into());
    };
    let report: Value = serde_json::from_str(&std::fs::read_to_string(input)?)?;
    let data = series(&report);
    if data.is_empty() {
        return Err(format!("{input}: no typed_receive figures").into());
    }
    plotters::style::register_font("sans-serif", FontStyle::Normal, font()?)
        .map_err(|_| "the font could not be read")?;
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    let (mut dmin, mut dmax) = (f64::MAX, 0f64);
    for (_, pts) in &data {
        for &(d, ns) in pts {
            lo = lo.min(ns);
            hi = hi.max(ns);
            dmin = dmin.min(d);
            dmax = dmax.max(d);
        }
    }
    let root = BitMapBackend::new(output, (1000, 680)).into_drawing_area();
    root.fill(&WHITE)?;
    let date = report["machine"]["date_utc"].as_str().unwrap_or("");
    let cpu = report["machine"]["cpu"].as_str().unwrap_or("");
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Receive with D messages of types 1..D queued (p50), {cpu}, {date} UTC"),
            ("sans-serif", 20),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (dmin / 1.5..dmax * 1.5).log_scale(),
            (lo / 2.0..hi * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("queue depth D (messages, one per type)")
        .y_desc("receive time, ns (log)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 1e6 {
                format!("{:.0} ms", y / 1e6)
            } else if *y >= 1e3 {
                format!("{:.0} µs", y / 1e3)
            } else {
                format!("{y:.0} ns")
            }
        })
        .label_style(("sans-serif", 15))
        .draw()?;
    for ((mech, sel), pts) in &data {
        let color = match sel.as_str() {
            "D" => RGBColor(31, 119, 180),
            "-D" => RGBColor(214, 39, 40),
            _ => RGBColor(44, 160, 44),
        };
        let kernel = mech != "shmq";
        let style = ShapeStyle {
            color: color.to_rgba(),
            filled: !kernel,
            stroke_width: if kernel { 1 } else { 3 },
        };
        let label = format!(
            "{} msgtyp={sel}",
            if kernel { "kernel SysV" } else { "shmq" }
        );
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), style))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        if kernel {
            chart.draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 7, style)))?;
        } else {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, style)))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    eprintln!("wrote {output}");
    Ok(())
}
