//! `bench.svg`: two horizontal bar charts (throughput relative to untraced,
//! time to a working read-only nginx), drawn by hand: a few rectangles and
//! lines need no plotting library.

use std::fmt::Write as _;

use crate::{
    report::{f, ratio},
    schema::{Bench, Method, Variant},
};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One horizontal bar: label, value, whisker range, text after the bar.
struct Bar {
    label: String,
    value: f64,
    lo: f64,
    hi: f64,
    note: String,
}

const W: f64 = 760.0;
const LABEL_W: f64 = 230.0;
const PLOT_W: f64 = 400.0;
const ROW_H: f64 = 30.0;

/// Draws a titled panel of bars from `y`; returns the y below it.
#[expect(clippy::cast_precision_loss, reason = "a handful of rows")]
fn panel(
    svg: &mut String,
    y: f64,
    title: &str,
    bars: &[Bar],
    scale: f64,
    refs: &[(f64, &str)],
) -> f64 {
    let x0 = LABEL_W;
    let px = |v: f64| {
        if v.is_finite() {
            x0 + (v / scale).clamp(0.0, 1.0) * PLOT_W
        } else {
            x0
        }
    };
    let _ = writeln!(
        svg,
        r#"<text x="10" y="{:.1}" font-size="15" font-weight="bold">{}</text>"#,
        y + 18.0,
        esc(title)
    );
    let top = y + 30.0;
    let bottom = top + ROW_H * bars.len() as f64;
    for (i, b) in bars.iter().enumerate() {
        let ry = top + ROW_H * i as f64;
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{}</text>
<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="18" fill="#4878a8"/>
<line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#222" stroke-width="1.5"/>
<text x="{:.1}" y="{:.1}" font-size="12">{}</text>"##,
            x0 - 8.0,
            ry + 14.0,
            esc(&b.label),
            ry + 1.0,
            px(b.value) - x0,
            px(b.lo),
            px(b.hi),
            ry + 10.0,
            ry + 10.0,
            px(b.hi.max(b.value)) + 6.0,
            ry + 14.0,
            esc(&b.note),
        );
    }
    for &(v, label) in refs {
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#c03030" stroke-dasharray="4 3"/>
<text x="{x:.1}" y="{:.1}" font-size="11" fill="#c03030" text-anchor="middle">{}</text>"##,
            top - 4.0,
            bottom,
            bottom + 13.0,
            esc(label),
            x = px(v),
        );
    }
    bottom + 24.0
}

/// The chart: throughput ratios, then time to a working nginx.
pub fn svg(b: &Bench) -> String {
    let ratio_bar = |v: Variant, label: &str| {
        let r = ratio(&b.overhead, v);
        let paired = b.overhead.variant(v).and_then(|x| x.paired_ratio);
        Bar {
            label: label.into(),
            value: r,
            lo: f(paired.map(|s| s.min)),
            hi: f(paired.map(|s| s.max)),
            note: format!("{r:.3}"),
        }
    };
    let ratios = [
        ratio_bar(Variant::Floor, "empty programs, floor (container)"),
        ratio_bar(Variant::Roprof, "roprof (container)"),
        ratio_bar(Variant::Neighbour, "roprof on another container"),
        ratio_bar(Variant::Bpftrace, "bpftrace script (container)"),
        ratio_bar(Variant::HostStrace, "strace -f (host, vs host)"),
    ];
    let answer_bar = |m: Method, label: &str| {
        let r = b.answer.method(m);
        let s = r.and_then(|r| r.wall_secs);
        let runs = r
            .and_then(|r| r.runs.last())
            .map_or_else(|| "?".into(), ToString::to_string);
        let works = r.is_some_and(|r| !r.works.is_empty() && r.works.iter().all(|&w| w));
        let median = f(s.map(|s| s.median));
        Bar {
            label: label.into(),
            value: median,
            lo: f(s.map(|s| s.min)),
            hi: f(s.map(|s| s.max)),
            note: format!(
                "{median:.1} s, {runs} runs, {}",
                if works { "works" } else { "does not work" }
            ),
        }
    };
    let answers = [
        answer_bar(Method::Roprof, "roprof profile --verify"),
        answer_bar(Method::Naive, "trial and error"),
        answer_bar(Method::Diff, "docker diff"),
    ];
    let max_wall = answers
        .iter()
        .map(|b| b.hi.max(b.value))
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let scale = (max_wall / 5.0).ceil() * 5.0;

    let mut body = String::new();
    let y = panel(
        &mut body,
        0.0,
        "Write-open throughput vs untraced (dashed: 1.0, 0.95 goal; whisker: per-rep min–max)",
        &ratios,
        1.1,
        &[(1.0, "1.0 = untraced"), (0.95, "")],
    );
    let y = panel(
        &mut body,
        y,
        &format!("Time to a working read-only nginx, seconds (axis 0–{scale:.0})"),
        &answers,
        scale,
        &[],
    );
    let _ = writeln!(
        body,
        r##"<text x="10" y="{:.1}" font-size="11" fill="#555">{}</text>"##,
        y + 4.0,
        esc(&format!(
            "cargo xtask bench, {} — see bench.md for how each figure was measured",
            b.machine.summary
        ))
    );
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h:.0}\" \
         viewBox=\"0 0 {W} {h:.0}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n",
        h = y + 16.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_is_well_formed_even_with_missing_numbers() {
        let mut b: Bench = serde_json::from_str(include_str!("../../reports/bench.json"))
            .expect("reports/bench.json fits the schema");
        b.machine.summary = "a <b> & c".into();
        b.overhead.variants.clear();
        b.answer.methods.clear();
        let s = svg(&b);
        assert!(
            s.starts_with("<svg") && s.trim_end().ends_with("</svg>"),
            "an SVG document: {s}"
        );
        assert!(
            s.contains("a &lt;b&gt; &amp; c"),
            "text must be escaped: {s}"
        );
        assert!(!s.contains("NaN\""), "no NaN coordinates expected in {s}");
    }

    #[test]
    fn the_checked_in_chart_is_what_the_json_draws() {
        let b: Bench = serde_json::from_str(include_str!("../../reports/bench.json"))
            .expect("reports/bench.json fits the schema");
        assert_eq!(
            svg(&b),
            include_str!("../../reports/bench.svg"),
            "reports/bench.svg should be what `cargo xtask bench --render` draws"
        );
    }
}
