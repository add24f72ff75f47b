//! `--plot FILE.svg`: the latency percentile curves and the throughput over time, drawn by hand
//! as two line charts in one SVG.

use std::fmt::Write;

use super::report::Report;
use super::stats::{Summary, TICK};

const WIDTH: f64 = 960.0;
const PANEL_HEIGHT: f64 = 330.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 260.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// One line of a chart.
struct Series {
    name: String,
    color: &'static str,
    dash: &'static str,
    points: Vec<(f64, f64)>,
}

/// An axis: range in plot units (already log10 where `log`), and labelled ticks.
struct Axis {
    label: String,
    min: f64,
    max: f64,
    ticks: Vec<(f64, String)>,
}

/// The SVG of a report.
pub fn svg(report: &Report) -> String {
    let mut out = String::new();
    let height = 2.0 * PANEL_HEIGHT + 30.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    latency_panel(&mut out, report, 0.0);
    throughput_panel(&mut out, report, PANEL_HEIGHT + 30.0);
    out.push_str("</svg>\n");
    out
}

/// x of a percentile on the usual HDR scale: log10(1 / (1 − p)), so 90, 99, 99.9 … are evenly
/// spaced and the tail gets the room.
fn percentile_x(p: f64) -> f64 {
    let tail = (1.0 - p / 100.0).max(1e-5);
    (1.0 / tail).log10()
}

fn latency_panel(out: &mut String, report: &Report, y: f64) {
    const KINDS: [(&str, &str); 3] = [
        ("send→ack", "#1f77b4"),
        ("send→receive", "#2ca02c"),
        ("send→receipt", "#d62728"),
    ];
    const DASHES: [&str; 4] = ["", "6,3", "2,3", "8,3,2,3"];
    let mut runs: Vec<(String, [&Summary; 3])> = report
        .latency
        .iter()
        .map(|l| {
            let s = &l.latency;
            (
                format!("{} msg/s", l.rate),
                [&s.send_to_ack, &s.send_to_receive, &s.send_to_receipt],
            )
        })
        .collect();
    if runs.is_empty() {
        if let Some(t) = &report.throughput {
            let s = &t.latency;
            runs.push((
                "throughput".into(),
                [&s.send_to_ack, &s.send_to_receive, &s.send_to_receipt],
            ));
        }
    }
    let mut series = Vec::new();
    for (index, (name, summaries)) in runs.iter().enumerate() {
        for ((kind, color), summary) in KINDS.iter().zip(summaries) {
            let points = summary
                .curve
                .iter()
                .filter(|(p, _)| *p < 100.0)
                .map(|&(p, ms)| (percentile_x(p), ms.max(0.01).log10()))
                .collect();
            series.push(Series {
                name: format!("{kind} @ {name}"),
                color,
                dash: DASHES[index % DASHES.len()],
                points,
            });
        }
    }
    let (lo, hi) = bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    // 0.1 ms to 100 ms when nothing was measured; otherwise whole decades around the data.
    let (lo, hi) = if series.is_empty() {
        (-1.0, 2.0)
    } else {
        (lo.floor().min(-1.0), hi.ceil().max(lo.floor() + 1.0))
    };
    let y_ticks = (lo as i32..=hi as i32)
        .map(|e| (e as f64, format_ms(10f64.powi(e))))
        .collect();
    let x_ticks = [0.0, 90.0, 99.0, 99.9, 99.99]
        .iter()
        .map(|&p| (percentile_x(p), format!("{p}%")))
        .collect();
    chart(
        out,
        y,
        "Latency by percentile (from the scheduled send; log scale)",
        Axis {
            label: "percentile".into(),
            min: 0.0,
            max: 4.0,
            ticks: x_ticks,
        },
        Axis {
            label: "ms".into(),
            min: lo,
            max: hi,
            ticks: y_ticks,
        },
        &series,
    );
}

fn throughput_panel(out: &mut String, report: &Report, y: f64) {
    let tick = TICK.as_secs_f64();
    let mut series = Vec::new();
    for (name, run, color) in [
        ("raw forwarder", &report.raw, "#7f7f7f"),
        ("surechat", &report.throughput, "#d62728"),
    ] {
        if let Some(r) = run {
            series.push(Series {
                name: format!("{name} ({:.0}/s)", r.messages_per_second),
                color,
                dash: "",
                points: r
                    .timeline_per_s
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ((i as f64 + 1.0) * tick, *v))
                    .collect(),
            });
        }
    }
    let (_, hi) = bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let (_, x_hi) = bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let y_max = nice(hi.max(1.0));
    let x_max = x_hi.max(1.0).ceil();
    let y_ticks = (0..=5)
        .map(|i| {
            let v = y_max * i as f64 / 5.0;
            (v, format!("{:.0}k", v / 1000.0))
        })
        .collect();
    let x_ticks = (0..=5)
        .map(|i| {
            let v = x_max * i as f64 / 5.0;
            (v, format!("{v:.0} s"))
        })
        .collect();
    chart(
        out,
        y,
        "Throughput over time (messages completed end to end per second)",
        Axis {
            label: "time".into(),
            min: 0.0,
            max: x_max,
            ticks: x_ticks,
        },
        Axis {
            label: "msg/s".into(),
            min: 0.0,
            max: y_max,
            ticks: y_ticks,
        },
        &series,
    );
}

fn chart(out: &mut String, top: f64, title: &str, x: Axis, y: Axis, series: &[Series]) {
    let (x0, y0) = (LEFT, top + TOP);
    let (w, h) = (WIDTH - LEFT - RIGHT, PANEL_HEIGHT - TOP - BOTTOM);
    let px = |v: f64| x0 + (v - x.min) / (x.max - x.min).max(1e-9) * w;
    let py = |v: f64| y0 + h - (v - y.min) / (y.max - y.min).max(1e-9) * h;
    let _ = writeln!(
        out,
        r#"<text x="{x0}" y="{}" font-size="14" font-weight="bold">{title}</text>"#,
        top + 22.0
    );
    for (v, label) in &x.ticks {
        let p = px(*v);
        let _ = writeln!(
            out,
            r##"<line x1="{p:.1}" y1="{y0}" x2="{p:.1}" y2="{}" stroke="#e0e0e0"/><text x="{p:.1}" y="{}" text-anchor="middle">{label}</text>"##,
            y0 + h,
            y0 + h + 16.0
        );
    }
    for (v, label) in &y.ticks {
        let p = py(*v);
        let _ = writeln!(
            out,
            r##"<line x1="{x0}" y1="{p:.1}" x2="{}" y2="{p:.1}" stroke="#e0e0e0"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
            x0 + w,
            x0 - 6.0,
            p + 4.0
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#444"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
        x0 + w / 2.0,
        y0 + h + 36.0,
        x.label
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {} {:.1})">{}</text>"#,
        x0 - 55.0,
        y0 + h / 2.0,
        x0 - 55.0,
        y0 + h / 2.0,
        y.label
    );
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", px(a), py(b.clamp(y.min, y.max))))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2" stroke-dasharray="{}"/>"#,
            points.join(" "),
            s.color,
            s.dash
        );
        let ly = y0 + 10.0 + i as f64 * 18.0;
        let lx = x0 + w + 12.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2" stroke-dasharray="{}"/><text x="{}" y="{}">{}</text>"#,
            lx + 24.0,
            s.color,
            s.dash,
            lx + 30.0,
            ly + 4.0,
            s.name
        );
    }
    if series.is_empty() {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#888">not measured in this run</text>"##,
            x0 + w / 2.0,
            y0 + h / 2.0
        );
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// A round number at or above `v` (1, 2 or 5 times a power of ten).
fn nice(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

fn format_ms(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms}")
    }
}
