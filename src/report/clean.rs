//! Default mask cleaning and the one-line summary: what makes a report readable.
//!
//! - Regions are ranked by evidence, `area x mean probability` (a large faint region and a small
//!   certain one weigh by how much probability mass they hold), most first.
//! - Minimum region area: by default 0.1% of the image's pixels. Measured on the ELA maps
//!   (tools/cleaning_study.py, docs/report.md "Cleaning"): without it the pool's
//!   pristine photos give a median of 465 regions (up to 7,713) and real-dev's DSC06083 8,017;
//!   with it 11 (up to 50) and 7, and real-dev's mean pixel F1 rises from 0.281 to 0.308. The
//!   smallest real-dev forgery covers 1.5% of its image, 15 times the minimum.
//! - Opening: none by default. An opening of 0.25%, 0.5% or 1% of the short side on top of the
//!   minimum area lowered real-dev's F1 (to 0.304, 0.232, 0.262) and removed few regions the
//!   minimum area had not.
//! - The summary line shows the verdict, the score and the calibration used, and the top
//!   [`SUMMARY_REGIONS`] regions; the JSON report lists them all.

use super::mask::Region;
use super::verdict::{Calibration, Verdict};

/// Default minimum region area, as a fraction of the image's pixels.
pub const DEFAULT_MIN_AREA_FRAC: f64 = 0.001;
/// Default opening radius, as a fraction of the short side (0: none).
pub const DEFAULT_OPEN_FRAC: f64 = 0.0;
/// Regions named on the summary line.
pub const SUMMARY_REGIONS: usize = 3;

/// The cleaning applied to one image's mask, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cleaning {
    pub open: usize,
    pub close: usize,
    pub min_area: usize,
}

impl Cleaning {
    /// The options given, the defaults for a `w x h` image where not.
    pub fn resolve(open: Option<usize>, close: usize, min_area: Option<usize>, w: usize, h: usize) -> Cleaning {
        let open = open.unwrap_or_else(|| (w.min(h) as f64 * DEFAULT_OPEN_FRAC).round() as usize);
        let min_area = min_area.unwrap_or_else(|| ((w * h) as f64 * DEFAULT_MIN_AREA_FRAC).round() as usize).max(1);
        Cleaning { open, close, min_area }
    }
}

/// A region's evidence: area x mean probability.
pub fn evidence(r: &Region) -> f64 {
    r.area as f64 * r.mean_prob as f64
}

/// Sort regions by evidence, most first (ties: larger, then top-left first).
pub fn rank(regions: &mut [Region]) {
    regions.sort_by(|a, b| {
        evidence(b).total_cmp(&evidence(a)).then(b.area.cmp(&a.area)).then((a.y0, a.x0).cmp(&(b.y0, b.x0)))
    });
}

/// `tampered (score 0.0205; tampered > 0.015, clean <= 0, set for 5% false alarms (4.7% measured) on 128 pristine)`.
pub fn verdict_phrase(verdict: Verdict, score: f32, cal: &Calibration) -> String {
    format!("{} (score {score:.4}; {})", verdict.word(), cal.brief())
}

/// `2 regions: [x0,y0,x1,y1] 3.10% p 0.82, ...` with at most [`SUMMARY_REGIONS`] listed, ranked.
pub fn regions_phrase(regions: &[Region], w: usize, h: usize) -> String {
    let n = regions.len();
    let mut s = format!("{n} region{}", if n == 1 { "" } else { "s" });
    if n > 0 {
        let shown: Vec<String> = regions
            .iter()
            .take(SUMMARY_REGIONS)
            .map(|r| {
                let pct = 100.0 * r.area as f64 / (w * h).max(1) as f64;
                format!("[{},{},{},{}] {pct:.2}% p {:.2}", r.x0, r.y0, r.x1, r.y1, r.mean_prob)
            })
            .collect();
        let more =
            if n > SUMMARY_REGIONS { format!(", {} more in the report", n - SUMMARY_REGIONS) } else { String::new() };
        s += &format!(" ({}{more})", shown.join(", "));
    }
    s
}

/// The summary line's words for matched pairs (copy-move): `, 1 pair (#1 [x0,y0,x1,y1] -> [..]
/// rotated 12.0 deg, scale 1.05)`, the first [`SUMMARY_REGIONS`] shown; empty for models that do
/// not look for pairs.
pub fn pairs_phrase(pairs: Option<&[crate::models::ClonePair]>) -> String {
    let Some(pairs) = pairs else { return String::new() };
    let n = pairs.len();
    let mut s = format!(", {n} pair{}", if n == 1 { "" } else { "s" });
    if n > 0 {
        let b = |x: [usize; 4]| format!("[{},{},{},{}]", x[0], x[1], x[2], x[3]);
        let shown: Vec<String> = pairs
            .iter()
            .take(SUMMARY_REGIONS)
            .enumerate()
            .map(|(i, p)| {
                let (src, dst) = (b(p.source), b(p.destination));
                format!("#{} {src} -> {dst} rotated {:.1} deg, scale {:.2}", i + 1, p.rotation_deg, p.scale)
            })
            .collect();
        let more = if n > SUMMARY_REGIONS { format!(", {} more", n - SUMMARY_REGIONS) } else { String::new() };
        s += &format!(" ({}{more})", shown.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ScoreRule;

    #[test]
    fn pairs_phrase_names_each_pair_once_and_nothing_without_pairs() {
        use crate::models::ClonePair;
        assert_eq!(pairs_phrase(None), "");
        assert_eq!(pairs_phrase(Some(&[])), ", 0 pairs");
        let p = ClonePair {
            source: [1, 2, 30, 40],
            destination: [100, 2, 131, 42],
            offset: [99.0, 0.5],
            rotation_deg: 12.04,
            scale: 1.049,
            area: 900,
            strength: 0.8,
        };
        assert_eq!(
            pairs_phrase(Some(&[p.clone()])),
            ", 1 pair (#1 [1,2,30,40] -> [100,2,131,42] rotated 12.0 deg, scale 1.05)"
        );
        assert!(pairs_phrase(Some(&vec![p; 5])).ends_with(", 2 more)"));
    }

    fn reg(x0: usize, area: usize, mean_prob: f32) -> Region {
        Region { x0, y0: 0, x1: x0 + 1, y1: 1, area, mean_prob, max_prob: mean_prob }
    }

    #[test]
    fn regions_rank_by_area_times_probability() {
        let mut rs = vec![reg(0, 100, 0.55), reg(1, 60, 0.99), reg(2, 300, 0.2), reg(3, 10, 1.0)];
        rank(&mut rs);
        let order: Vec<usize> = rs.iter().map(|r| r.x0).collect();
        assert_eq!(order, [2, 1, 0, 3], "evidence 60, 59.4, 55, 10");
    }

    #[test]
    fn defaults_scale_with_the_image_and_options_win() {
        assert_eq!(Cleaning::resolve(None, 0, None, 1920, 1080), Cleaning { open: 0, close: 0, min_area: 2074 });
        assert_eq!(Cleaning::resolve(None, 2, None, 40, 30).min_area, 1, "at least one pixel");
        assert_eq!(Cleaning::resolve(Some(3), 1, Some(0), 1920, 1080), Cleaning { open: 3, close: 1, min_area: 1 });
    }

    #[test]
    fn the_summary_names_at_most_three_regions() {
        let rs: Vec<Region> = (0..8017).map(|i| reg(i, 5, 0.6)).collect();
        let s = regions_phrase(&rs, 1920, 1080);
        assert!(s.starts_with("8017 regions (") && s.ends_with(", 8014 more in the report)"), "{s}");
        assert_eq!(s.matches('[').count(), SUMMARY_REGIONS, "{s}");
        assert_eq!(regions_phrase(&[], 10, 10), "0 regions");
        assert_eq!(regions_phrase(&rs[..1], 10, 10), "1 region ([0,0,1,1] 5.00% p 0.60)");
        let cal = Calibration::measured(ScoreRule::BlurMax { box_frac: 0.01 }, 0.6, 0.2, 0.05, 128, "t");
        let v = verdict_phrase(cal.verdict(0.3), 0.3, &cal);
        let want = "inconclusive (score 0.3000; tampered > 0.6, clean <= 0.2, set for 5% false alarms (5.0% measured) on 128 pristine)";
        assert_eq!(v, want);
    }
}
