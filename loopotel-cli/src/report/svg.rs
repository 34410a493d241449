//! The overview's charts, drawn here as inline SVG: histograms of a metric over every run,
//! and horizontal bars for counts by outcome or termination reason.

use std::fmt::Write as _;

use super::page::esc;

/// How a metric's values are written.
#[derive(Clone, Copy)]
pub(crate) enum Unit {
    /// A count (iterations, tokens).
    Count,
    /// A score in about 0..1.
    Score,
    /// US dollars.
    Usd,
    /// Milliseconds.
    Ms,
}

impl Unit {
    pub(crate) fn format(self, v: f64) -> String {
        match self {
            Unit::Count if v.abs() >= 1e6 => format!("{:.1}M", v / 1e6),
            Unit::Count if v.abs() >= 1e4 => format!("{:.1}k", v / 1e3),
            Unit::Count if v.fract() == 0.0 => format!("{v:.0}"),
            Unit::Count => format!("{v:.1}"),
            Unit::Score => format!("{v:.2}"),
            Unit::Usd if v.abs() >= 1.0 => format!("${v:.2}"),
            Unit::Usd => format!("${v:.4}"),
            Unit::Ms if v >= 60_000.0 => format!("{:.1}m", v / 60_000.0),
            Unit::Ms if v >= 1_000.0 => format!("{:.1}s", v / 1_000.0),
            Unit::Ms if v >= 1.0 => format!("{v:.0}ms"),
            Unit::Ms => format!("{v:.2}ms"),
        }
    }
}

const W: f64 = 320.0;
const H: f64 = 150.0;
const LEFT: f64 = 34.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// The `q`-quantile of sorted values (nearest rank).
fn quantile(sorted: &[f32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)])
}

/// A histogram of `values` with its median and 95th percentile under it; a note instead when
/// there are none.
pub(crate) fn histogram(title: &str, values: &[f32], unit: Unit) -> String {
    let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<figure class="chart" data-chart="{}"><figcaption>{}</figcaption>"#,
        esc(title),
        esc(title)
    );
    if sorted.is_empty() {
        out.push_str(r#"<p class="none">no values recorded</p></figure>"#);
        return out;
    }
    sorted.sort_by(f32::total_cmp);
    let lo = f64::from(sorted[0]);
    let hi = f64::from(sorted[sorted.len() - 1]);
    let integers = matches!(unit, Unit::Count) && sorted.iter().all(|v| v.fract() == 0.0);
    let (bins, width) = if integers && hi - lo < 30.0 {
        ((hi - lo) as usize + 1, 1.0)
    } else if hi > lo {
        (24, (hi - lo) / 24.0)
    } else {
        (1, 1.0)
    };
    let mut counts = vec![0u64; bins];
    for v in &sorted {
        let i = ((f64::from(*v) - lo) / width).floor() as usize;
        counts[i.min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let plot_w = W - LEFT - 6.0;
    let plot_h = H - TOP - BOTTOM;
    let bar_w = plot_w / bins as f64;
    let _ = write!(
        out,
        r#"<svg viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        esc(title)
    );
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{y}" x2="{x2}" y2="{y}"/><text class="tick" x="{tx}" y="{ty}" text-anchor="end">{top}</text><text class="tick" x="{tx}" y="{y}" text-anchor="end">0</text>"#,
        y = TOP + plot_h,
        x2 = W - 6.0,
        tx = LEFT - 4.0,
        ty = TOP + 8.0,
        top = top as u64,
    );
    for (i, c) in counts.iter().enumerate() {
        if *c == 0 {
            continue;
        }
        let h = (*c as f64 / top * plot_h).max(1.0);
        let (from, to) = (lo + i as f64 * width, lo + (i + 1) as f64 * width);
        let label = if integers {
            format!("{}: {c} run(s)", unit.format(from))
        } else if bins == 1 {
            format!("{}: {c} run(s)", unit.format(lo))
        } else {
            format!("{} – {}: {c} run(s)", unit.format(from), unit.format(to))
        };
        let _ = write!(
            out,
            r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{}</title></rect>"#,
            LEFT + i as f64 * bar_w + 1.0,
            TOP + plot_h - h,
            (bar_w - 2.0).max(1.0),
            esc(&label)
        );
    }
    if integers && bins <= 12 {
        // A label under each value.
        for i in 0..bins {
            let _ = write!(
                out,
                r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                LEFT + (i as f64 + 0.5) * bar_w,
                H - 6.0,
                esc(&unit.format(lo + i as f64))
            );
        }
        out.push_str("</svg>");
    } else {
        let _ = write!(
            out,
            r#"<text class="tick" x="{LEFT}" y="{y}">{}</text><text class="tick" x="{x}" y="{y}" text-anchor="end">{}</text></svg>"#,
            esc(&unit.format(lo)),
            esc(&unit.format(hi)),
            y = H - 6.0,
            x = W - 6.0,
        );
    }
    let mean = sorted.iter().map(|v| f64::from(*v)).sum::<f64>() / sorted.len() as f64;
    let _ = write!(
        out,
        r#"<p class="stats">n {} · mean {} · median {} · p95 {}</p></figure>"#,
        sorted.len(),
        esc(&unit.format(mean)),
        esc(&unit.format(quantile(&sorted, 0.5))),
        esc(&unit.format(quantile(&sorted, 0.95)))
    );
    out
}

/// Horizontal bars: one row per `(label, count, css class)`, widths relative to `total`.
pub(crate) fn bars(title: &str, rows: &[(String, u64, &str)], total: u64) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<figure class="chart" data-chart="{}"><figcaption>{}</figcaption>"#,
        esc(title),
        esc(title)
    );
    if rows.is_empty() {
        out.push_str(r#"<p class="none">no runs</p></figure>"#);
        return out;
    }
    let row_h = 22.0;
    let h = row_h * rows.len() as f64 + 4.0;
    let label_w = 150.0;
    let bar_max = W - label_w - 70.0;
    let _ = write!(
        out,
        r#"<svg viewBox="0 0 {W} {h}" role="img" aria-label="{}">"#,
        esc(title)
    );
    for (i, (label, count, class)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 2.0;
        let share = *count as f64 / total.max(1) as f64;
        let shown: String = if label.chars().count() > 24 {
            label.chars().take(23).chain(std::iter::once('…')).collect()
        } else {
            label.clone()
        };
        let _ = write!(
            out,
            r#"<text class="label" x="{lx}" y="{ty:.1}" text-anchor="end">{}</text><rect class="bar {class}" x="{label_w}" y="{y:.1}" width="{w:.1}" height="{bh}"><title>{}: {count} ({pct:.1}%)</title></rect><text class="tick" x="{cx:.1}" y="{ty:.1}">{count} · {pct:.1}%</text>"#,
            esc(&shown),
            esc(label),
            lx = label_w - 6.0,
            ty = y + 14.0,
            w = (share * bar_max).max(1.0),
            bh = row_h - 6.0,
            cx = label_w + (share * bar_max).max(1.0) + 4.0,
            pct = share * 100.0,
        );
    }
    out.push_str("</svg></figure>");
    out
}
