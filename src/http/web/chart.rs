//! Charts as inline SVG, drawn on the server: no script, no library, and
//! they print. A line chart of several series per day, and stacked bars.

use std::fmt::Write;

pub struct Series<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub values: Vec<i64>,
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 48.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round top for the axis: 1, 2, 5 × 10ⁿ steps.
fn axis_top(max: i64) -> i64 {
    let max = max.max(1);
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if step * m * 4 >= max {
                return step * m * 4;
            }
        }
        step *= 10;
    }
}

/// The frame: horizontal grid lines with their values, day labels, legend.
fn frame(out: &mut String, title: &str, days: &[String], top: i64, series: &[(&str, &str)]) {
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title>{t}</title>",
        t = escape(title)
    );
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=4 {
        let y = TOP + plot_h * (1.0 - f64::from(i) / 4.0);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#e5e7eb\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#6b7280\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            y + 3.0,
            top * i64::from(i) / 4
        );
    }
    let n = days.len().max(1);
    let step = (n / 6).max(1);
    for (i, d) in days.iter().enumerate() {
        if i % step == 0 || i + 1 == n {
            let x = x_of(i, n);
            let _ = write!(
                out,
                "<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#6b7280\">{}</text>",
                H - BOTTOM + 14.0,
                escape(d.get(5..).unwrap_or(d))
            );
        }
    }
    let mut lx = LEFT;
    for (label, color) in series {
        let _ = write!(
            out,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#374151\">{}</text>",
            H - 16.0,
            lx + 14.0,
            H - 7.0,
            escape(label)
        );
        lx += 24.0 + 7.0 * label.chars().count() as f64 * if label.is_ascii() { 1.0 } else { 1.6 };
    }
}

fn x_of(i: usize, n: usize) -> f64 {
    let plot_w = W - LEFT - RIGHT;
    LEFT + plot_w * (i as f64 + 0.5) / n as f64
}

fn y_of(v: i64, top: i64) -> f64 {
    let plot_h = H - TOP - BOTTOM;
    TOP + plot_h * (1.0 - v as f64 / top as f64)
}

/// Several series over the same days, one polyline each.
pub fn lines(title: &str, days: &[String], series: &[Series<'_>]) -> String {
    let top = axis_top(
        series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .max()
            .unwrap_or(0),
    );
    let mut out = String::with_capacity(4096);
    let legend: Vec<(&str, &str)> = series.iter().map(|s| (s.label, s.color)).collect();
    frame(&mut out, title, days, top, &legend);
    for s in series {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i, days.len()), y_of(*v, top)))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"series\" data-label=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
            escape(s.label),
            s.color,
            points.join(" ")
        );
    }
    out.push_str("</svg>");
    out
}

/// Stacked bars per day, one colour per series.
pub fn stacked_bars(title: &str, days: &[String], series: &[Series<'_>]) -> String {
    let totals: Vec<i64> = (0..days.len())
        .map(|i| series.iter().map(|s| s.values.get(i).copied().unwrap_or(0)).sum())
        .collect();
    let top = axis_top(totals.iter().copied().max().unwrap_or(0));
    let mut out = String::with_capacity(4096);
    let legend: Vec<(&str, &str)> = series.iter().map(|s| (s.label, s.color)).collect();
    frame(&mut out, title, days, top, &legend);
    let n = days.len().max(1);
    let bar = ((W - LEFT - RIGHT) / n as f64 * 0.7).max(1.0);
    for (i, day) in days.iter().enumerate() {
        let mut below = 0;
        for s in series {
            let v = s.values.get(i).copied().unwrap_or(0);
            if v > 0 {
                let y_top = y_of(below + v, top);
                let y_bottom = y_of(below, top);
                let _ = write!(
                    out,
                    "<rect class=\"bar\" x=\"{:.1}\" y=\"{y_top:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {}: {v}</title></rect>",
                    x_of(i, n) - bar / 2.0,
                    y_bottom - y_top,
                    s.color,
                    escape(day),
                    escape(s.label)
                );
            }
            below += v;
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(axis_top(0), 4);
        assert_eq!(axis_top(7), 8);
        assert_eq!(axis_top(35), 40);
        assert_eq!(axis_top(1234), 2000);
    }

    #[test]
    fn a_line_per_series_and_a_bar_per_value() {
        let days: Vec<String> = vec!["2026-11-25".into(), "2026-11-26".into()];
        let svg = lines(
            "t",
            &days,
            &[
                Series {
                    label: "a",
                    color: "#000",
                    values: vec![1, 2],
                },
                Series {
                    label: "b<",
                    color: "#111",
                    values: vec![0, 5],
                },
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("b&lt;") && svg.ends_with("</svg>"));
        let bars = stacked_bars(
            "t",
            &days,
            &[Series {
                label: "x",
                color: "#000",
                values: vec![0, 3],
            }],
        );
        assert_eq!(bars.matches("class=\"bar\"").count(), 1);
    }
}
