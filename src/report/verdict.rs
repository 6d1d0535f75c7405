//! Verdicts an analyst can trust: a per-model image score, calibrated on pristine photographs held
//! out from training, and the rule that turns it into `tampered`, `inconclusive` or `clean`.
//!
//! Each registry family says how its score is computed and where its thresholds lie
//! ([`crate::models::Family::calibration`]); a learned model's weight file may carry its own in the
//! metadata key `calibration` (JSON, [`Calibration::from_json`]). The numbers come from
//! `tools/calibrate.py` (docs/report.md, "Scores and verdicts"):
//! - `tampered`: the smallest value that at most 5% of the pristine photos exceed;
//! - `clean`: the 5th percentile of the score on held-out synthetic forgeries (at most 5% of them
//!   fall at or below it), never above `tampered`.
//!
//! Verdict: `score > tampered` -> tampered; `score <= clean` -> clean; otherwise inconclusive.

use serde_json::{json, Value};

use super::mask::{regions, Mask};
use super::score::image_score_box;

/// What the registry's calibrations were measured on (tools/calibrate.py).
/// A clean threshold no score reaches: for detectors whose silence is no evidence of a pristine
/// photo (copy-move finds clones only); their verdict is `tampered` or `inconclusive`.
pub const NEVER_CLEAN: f32 = -1.0;

pub const CALIBRATION_SOURCE: &str = "tools/calibrate.py, 2026-11-29: tampered threshold at <= 5% false alarms on 128 \
     pristine images (17 photo-pool val photos as PNG and JPEG q95/85/75, 60 synth384 val pristine); clean \
     threshold at the 5th percentile of 240 synth384 val forgeries";

/// How a model's image score is computed from its probability map (at the image's size).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScoreRule {
    /// The max of the map after a box blur `box_frac` of the short side wide (odd, at least 3 px):
    /// [`super::image_score`] is `box_frac = 0.01`.
    BlurMax { box_frac: f32 },
    /// The area, as a fraction of the image, of the largest 8-connected region of `p > level`
    /// after an opening with a square of radius `round(open_frac * short side)` (at least 1):
    /// how much of the image one coherent blob of high evidence covers. For maps normalised by
    /// their own percentile (ELA), whose maximum is about 1 on any photo.
    LargestRegion { level: f32, open_frac: f32 },
}

impl ScoreRule {
    /// The score of a row-major `h x w` map.
    pub fn score(&self, prob: &[f32], w: usize, h: usize) -> f32 {
        if w == 0 || h == 0 || prob.len() != w * h {
            return 0.0;
        }
        match *self {
            ScoreRule::BlurMax { box_frac } => {
                let side = ((w.min(h) as f64 * box_frac as f64).round() as usize).max(3) | 1;
                image_score_box(prob, w, h, side)
            }
            ScoreRule::LargestRegion { level, open_frac } => {
                let mut m = Mask::threshold(prob, w, h, level).open(open_radius(open_frac, w, h));
                let largest = regions(&mut m, prob, 1).first().map_or(0, |r| r.area);
                (largest as f64 / (w * h) as f64) as f32
            }
        }
    }

    /// In words, for reports.
    pub fn describe(&self) -> String {
        match *self {
            ScoreRule::BlurMax { box_frac } => {
                format!("max of the map after a box blur {}% of the short side wide", 100.0 * box_frac)
            }
            ScoreRule::LargestRegion { level, open_frac } => format!(
                "area fraction of the largest region of p > {level} after an opening of radius {}% of the short side",
                100.0 * open_frac
            ),
        }
    }

    fn to_json(self) -> Value {
        match self {
            ScoreRule::BlurMax { box_frac } => json!({"rule": "blur_max", "box_frac": r6(box_frac)}),
            ScoreRule::LargestRegion { level, open_frac } => {
                json!({"rule": "largest_region", "level": r6(level), "open_frac": r6(open_frac)})
            }
        }
    }

    fn from_json(v: &Value) -> Option<ScoreRule> {
        let f = |k: &str| v.get(k).and_then(Value::as_f64).map(|x| x as f32);
        match v.get("rule")?.as_str()? {
            "blur_max" => Some(ScoreRule::BlurMax { box_frac: f("box_frac")? }),
            "largest_region" => Some(ScoreRule::LargestRegion { level: f("level")?, open_frac: f("open_frac")? }),
            _ => None,
        }
    }
}

/// An f32 as the f64 with at most 6 decimals (0.7, not 0.699999988).
pub(super) fn r6(v: f32) -> f64 {
    (v as f64 * 1e6).round() / 1e6
}

/// Radius of a square `frac` of the short side (at least 1 pixel).
pub fn open_radius(frac: f32, w: usize, h: usize) -> usize {
    ((w.min(h) as f64 * frac as f64).round() as usize).max(1)
}

/// What the image score says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Tampered,
    Inconclusive,
    Clean,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Tampered => "tampered",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Clean => "clean",
        }
    }
}

/// A model's image score and verdict thresholds, and what they were measured on.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub score: ScoreRule,
    /// `score > tampered` is `tampered`.
    pub tampered: f32,
    /// `score <= clean` is `clean` (`clean <= tampered`).
    pub clean: f32,
    /// The false-alarm rate `tampered` was chosen for (0.05), `None` when not calibrated.
    pub target_false_alarm: Option<f32>,
    /// The share of the pristine photos above `tampered` when it was set.
    pub measured_false_alarm: Option<f32>,
    /// How many pristine photos.
    pub pristine_images: usize,
    /// What was measured, with what, when.
    pub source: String,
    /// For learned models: the sha256 of the weights it was measured with; other weights of the
    /// family get [`Calibration::uncalibrated`].
    pub weights_sha256: Option<String>,
}

impl Calibration {
    /// No measurement: the old rule (max of the map blurred over 1% of the short side, tampered
    /// above 0.5, clean at or below it), with no false-alarm rate to show.
    pub fn uncalibrated() -> Calibration {
        Calibration {
            score: ScoreRule::BlurMax { box_frac: 0.01 },
            tampered: 0.5,
            clean: 0.5,
            target_false_alarm: None,
            measured_false_alarm: None,
            pristine_images: 0,
            source: "not calibrated: fixed threshold 0.5".to_string(),
            weights_sha256: None,
        }
    }

    /// A calibration measured by tools/calibrate.py at the 5% false-alarm target.
    pub fn measured(
        score: ScoreRule,
        tampered: f32,
        clean: f32,
        far: f32,
        pristine: usize,
        source: &str,
    ) -> Calibration {
        Calibration {
            score,
            tampered,
            clean: clean.min(tampered),
            target_false_alarm: Some(0.05),
            measured_false_alarm: Some(far),
            pristine_images: pristine,
            source: source.to_string(),
            weights_sha256: None,
        }
    }

    /// The same, valid only for the weights with this sha256.
    pub fn for_weights(mut self, sha256: &str) -> Calibration {
        self.weights_sha256 = Some(sha256.to_string());
        self
    }

    pub fn is_calibrated(&self) -> bool {
        self.target_false_alarm.is_some()
    }

    /// The verdict for an image score.
    pub fn verdict(&self, score: f32) -> Verdict {
        if score > self.tampered {
            Verdict::Tampered
        } else if score <= self.clean {
            Verdict::Clean
        } else {
            Verdict::Inconclusive
        }
    }

    /// The report's `calibration` object; also what a weight file's metadata `calibration` holds.
    pub fn to_json(&self) -> Value {
        json!({
            "score": self.score.to_json(),
            "score_definition": self.score.describe(),
            "tampered_above": r6(self.tampered),
            "clean_at_or_below": r6(self.clean),
            "target_false_alarm_rate": self.target_false_alarm.map(r6),
            "measured_false_alarm_rate": self.measured_false_alarm.map(r6),
            "pristine_images": self.pristine_images,
            "source": self.source,
        })
    }

    /// Read what [`Calibration::to_json`] writes (the metadata `calibration` of a weight file).
    pub fn from_json(text: &str) -> Option<Calibration> {
        let v: Value = serde_json::from_str(text).ok()?;
        let f = |k: &str| v.get(k).and_then(Value::as_f64).map(|x| x as f32);
        let (tampered, clean) = (f("tampered_above")?, f("clean_at_or_below")?);
        let score = ScoreRule::from_json(v.get("score")?)?;
        (clean <= tampered).then(|| Calibration {
            score,
            tampered,
            clean,
            target_false_alarm: f("target_false_alarm_rate"),
            measured_false_alarm: f("measured_false_alarm_rate"),
            pristine_images: v.get("pristine_images").and_then(Value::as_u64).unwrap_or(0) as usize,
            source: v.get("source").and_then(Value::as_str).unwrap_or("weight file metadata").to_string(),
            weights_sha256: None,
        })
    }

    /// Short form for the summary line:
    /// `tampered > 0.015, clean <= 0, set for 5% false alarms (4.7% measured) on 128 pristine`.
    pub fn brief(&self) -> String {
        match self.target_false_alarm {
            Some(far) => format!(
                "tampered > {}, {}, set for {:.0}% false alarms ({:.1}% measured) on {} pristine",
                self.tampered,
                if self.clean < 0.0 { "never clean".to_string() } else { format!("clean <= {}", self.clean) },
                100.0 * far,
                100.0 * self.measured_false_alarm.unwrap_or(far),
                self.pristine_images
            ),
            None => format!("uncalibrated, tampered > {}", self.tampered),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_rule_has_three_bands() {
        let c = Calibration::measured(ScoreRule::BlurMax { box_frac: 0.01 }, 0.6, 0.2, 0.05, 100, "test");
        assert_eq!(c.verdict(0.61), Verdict::Tampered);
        assert_eq!(c.verdict(0.6), Verdict::Inconclusive, "at the tampered threshold: not above it");
        assert_eq!(c.verdict(0.3), Verdict::Inconclusive);
        assert_eq!(c.verdict(0.2), Verdict::Clean, "at the clean threshold: clean");
        assert_eq!(c.verdict(0.0), Verdict::Clean);
        // clean is never above tampered: no score is both.
        let c = Calibration::measured(ScoreRule::BlurMax { box_frac: 0.01 }, 0.4, 0.7, 0.05, 100, "test");
        assert_eq!(c.clean, 0.4);
        assert_eq!(c.verdict(0.5), Verdict::Tampered);
        assert_eq!(c.verdict(0.4), Verdict::Clean);
        // Uncalibrated: the old two-way rule at 0.5.
        let u = Calibration::uncalibrated();
        assert!(!u.is_calibrated());
        assert_eq!((u.verdict(0.51), u.verdict(0.5)), (Verdict::Tampered, Verdict::Clean));
        assert_eq!(
            [Verdict::Tampered, Verdict::Inconclusive, Verdict::Clean].map(Verdict::word),
            ["tampered", "inconclusive", "clean"]
        );
    }

    #[test]
    fn calibration_round_trips_through_json() {
        for rule in [ScoreRule::BlurMax { box_frac: 0.05 }, ScoreRule::LargestRegion { level: 0.7, open_frac: 0.005 }] {
            let c = Calibration::measured(rule, 0.25, 0.125, 0.039, 128, "tools/calibrate.py");
            let back = Calibration::from_json(&c.to_json().to_string()).unwrap();
            assert_eq!(back, c);
        }
        assert!(Calibration::from_json("{}").is_none());
        assert!(Calibration::from_json("not json").is_none());
        let bad = r#"{"score":{"rule":"blur_max","box_frac":0.01},"tampered_above":0.2,"clean_at_or_below":0.5}"#;
        assert!(Calibration::from_json(bad).is_none(), "clean above tampered");
    }

    #[test]
    fn largest_region_scores_one_coherent_blob_not_scattered_specks() {
        let (w, h) = (200, 100);
        let mut p = vec![0.0f32; w * h];
        // Specks: single pixels on a grid, removed by the opening.
        for y in (0..h).step_by(4) {
            for x in (0..w).step_by(4) {
                p[y * w + x] = 1.0;
            }
        }
        let rule = ScoreRule::LargestRegion { level: 0.7, open_frac: 0.01 };
        assert_eq!(rule.score(&p, w, h), 0.0);
        for y in 10..30 {
            for x in 50..90 {
                p[y * w + x] = 0.9;
            }
        }
        assert!((rule.score(&p, w, h) - 800.0 / 20000.0).abs() < 1e-6);
        assert_eq!(rule.score(&[], 0, 0), 0.0);
        let blur = ScoreRule::BlurMax { box_frac: 0.01 };
        assert_eq!(blur.score(&p, w, h), super::super::image_score(&p, w, h));
    }
}
