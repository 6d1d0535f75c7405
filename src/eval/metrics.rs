//! Pixel- and image-level localization metrics, computed per image and averaged over images the
//! way the field's benchmark code (IMDL-BenCo) does: see `docs/eval.md` and
//! `/work/shared/specs/evaluation.md`.
//!
//! - F1, IoU: the map is binarized with a strict `p > threshold`; `P = TP / (TP + FP + 1e-8)`,
//!   `R = TP / (TP + FN + 1e-8)`, `F1 = 2PR / (P + R + 1e-8)`, `IoU = TP / (TP + FP + FN + 1e-8)`.
//!   An image whose ground truth is empty scores 0 (as in the benchmark); callers count them.
//! - Permuted F1: `max(F1(p), F1(1 - p))`, the second binarized as `1 - p > threshold`.
//! - AUC: exact ROC AUC over the pixels, tie-aware (Mann-Whitney U with average ranks: a tied
//!   positive/negative pair counts one half). The benchmark sorts, cumulates and applies the
//!   trapezoid rule without grouping ties, so on maps with many equal values (saturated 0/1
//!   regions) its number depends on the sort order; ours does not. Undefined (None) when the
//!   ground truth has only one class.
//! - Best-threshold F1 and MCC (TruFor's extras): exact, over every distinct value of the map
//!   as a cut (from one sort per image, shared with the AUC), not over a histogram of bins.
//!   A cut marking nothing or everything has MCC 0 (as scikit-learn), so the best MCC is >= 0.
//!
//! Checked against `tests/fixtures/eval` (tools/make_eval_fixtures.py): brute force of these
//! definitions within 1e-12; scikit-learn's roc_auc_score and matthews_corrcoef within 1e-12, its
//! f1_score and jaccard_score within 1e-7 (the 1e-8 guards; measured 1.5e-8). See docs/eval.md.

/// Pixel counts of a binarized map against a binary ground truth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
}

impl Confusion {
    /// Counts with a pixel marked when `p > threshold` (or `1 - p > threshold` when `inverted`).
    pub fn at_threshold(prob: &[f32], gt: &[bool], threshold: f32, inverted: bool) -> Confusion {
        let mut c = Confusion::default();
        for (&p, &g) in prob.iter().zip(gt) {
            let marked = if inverted { 1.0 - p > threshold } else { p > threshold };
            match (marked, g) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }

    /// `2PR / (P + R)` with the benchmark's 1e-8 guards; 0 for an empty ground truth.
    pub fn f1(&self) -> f64 {
        let (tp, fp, fn_) = (self.tp as f64, self.fp as f64, self.fn_ as f64);
        let precision = tp / (tp + fp + 1e-8);
        let recall = tp / (tp + fn_ + 1e-8);
        2.0 * precision * recall / (precision + recall + 1e-8)
    }

    /// Intersection over union of the marked pixels and the ground truth, `I / (U + 1e-8)`.
    pub fn iou(&self) -> f64 {
        self.tp as f64 / ((self.tp + self.fp + self.fn_) as f64 + 1e-8)
    }

    /// Matthews correlation coefficient; 0 when any margin is empty.
    pub fn mcc(&self) -> f64 {
        let (tp, fp, fn_, tn) = (self.tp as f64, self.fp as f64, self.fn_ as f64, self.tn as f64);
        let den = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
        if den == 0.0 {
            0.0
        } else {
            (tp * tn - fp * fn_) / den
        }
    }
}

/// Every metric of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageMetrics {
    pub f1: f64,
    pub f1_permuted: f64,
    pub iou: f64,
    /// None when the ground truth has a single class (all tampered or all authentic).
    pub auc: Option<f64>,
    pub best_f1: f64,
    pub best_mcc: f64,
    /// The ground truth has no tampered pixel (F1 and IoU are 0 by convention).
    pub gt_empty: bool,
    /// [`image_score`] of the map, for image-level detection.
    pub score: f64,
}

/// All metrics of a `width x height` map against its ground truth (same length, row-major).
pub fn image_metrics(prob: &[f32], gt: &[bool], width: usize, height: usize, threshold: f32) -> ImageMetrics {
    let at = Confusion::at_threshold(prob, gt, threshold, false);
    let inverted = Confusion::at_threshold(prob, gt, threshold, true);
    let ranked = RankedMetrics::new(prob, gt);
    ImageMetrics {
        f1: at.f1(),
        f1_permuted: at.f1().max(inverted.f1()),
        iou: at.iou(),
        auc: ranked.auc,
        best_f1: ranked.best_f1,
        best_mcc: ranked.best_mcc,
        gt_empty: !gt.iter().any(|&g| g),
        score: image_score(prob, width, height),
    }
}

/// The metrics that need the pixels in order of their value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankedMetrics {
    pub auc: Option<f64>,
    pub best_f1: f64,
    pub best_mcc: f64,
}

impl RankedMetrics {
    /// One sort, then a walk over groups of equal values from the highest down. After each group
    /// the cut "marked when p >= this value" is scored, and so is the empty cut before the first.
    pub fn new(scores: &[f32], labels: &[bool]) -> RankedMetrics {
        let n = scores.len().min(labels.len());
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let positives = labels[..n].iter().filter(|&&l| l).count() as u64;
        let negatives = n as u64 - positives;
        let mut cut = Confusion { tp: 0, fp: 0, fn_: positives, tn: negatives };
        let (mut best_f1, mut best_mcc) = (cut.f1(), cut.mcc());
        // Mann-Whitney: every negative ranked below a positive counts 1, a tie counts 1/2.
        // Walking down, a group's positives beat all negatives not seen yet.
        let mut pairs_won = 0.0f64;
        let mut start = 0;
        while start < n {
            let value = scores[order[start]];
            let mut end = start;
            let (mut pos, mut neg) = (0u64, 0u64);
            while end < n && scores[order[end]].total_cmp(&value).is_eq() {
                if labels[order[end]] {
                    pos += 1;
                } else {
                    neg += 1;
                }
                end += 1;
            }
            let negatives_below = negatives - cut.fp - neg;
            pairs_won += pos as f64 * (negatives_below as f64 + 0.5 * neg as f64);
            cut = Confusion { tp: cut.tp + pos, fp: cut.fp + neg, fn_: cut.fn_ - pos, tn: cut.tn - neg };
            best_f1 = best_f1.max(cut.f1());
            best_mcc = best_mcc.max(cut.mcc());
            start = end;
        }
        let auc = (positives > 0 && negatives > 0).then(|| pairs_won / (positives as f64 * negatives as f64));
        RankedMetrics { auc, best_f1, best_mcc }
    }
}

/// Tie-aware ROC AUC of `scores` against `labels` (None without both classes).
pub fn roc_auc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    RankedMetrics::new(scores, labels).auc
}

/// The image-level score, as `infer` reports it ([`crate::report::score`] defines it).
pub fn image_score(prob: &[f32], width: usize, height: usize) -> f64 {
    crate::report::image_score(prob, width, height) as f64
}

/// Means over images, as the benchmark averages (every image counts, empty ground truths as 0).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MeanMetrics {
    pub images: usize,
    pub f1: f64,
    pub f1_permuted: f64,
    pub iou: f64,
    /// Over the images whose AUC is defined; None when there is none.
    pub auc: Option<f64>,
    pub auc_images: usize,
    pub best_f1: f64,
    pub best_mcc: f64,
}

impl MeanMetrics {
    pub fn of<'a>(all: impl IntoIterator<Item = &'a ImageMetrics>) -> MeanMetrics {
        let mut m = MeanMetrics::default();
        let mut auc_sum = 0.0;
        for im in all {
            m.images += 1;
            m.f1 += im.f1;
            m.f1_permuted += im.f1_permuted;
            m.iou += im.iou;
            m.best_f1 += im.best_f1;
            m.best_mcc += im.best_mcc;
            if let Some(a) = im.auc {
                auc_sum += a;
                m.auc_images += 1;
            }
        }
        if m.images > 0 {
            let n = m.images as f64;
            m.f1 /= n;
            m.f1_permuted /= n;
            m.iou /= n;
            m.best_f1 /= n;
            m.best_mcc /= n;
        }
        m.auc = (m.auc_images > 0).then(|| auc_sum / m.auc_images as f64);
        m
    }
}

/// Image-level detection: tampered (non-empty ground truth) against authentic images, by score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageLevel {
    pub tampered: usize,
    pub authentic: usize,
    /// Tie-aware AUC of the scores.
    pub auc: f64,
    /// `(TPR + TNR) / 2` with an image called tampered when its score `> threshold`.
    pub balanced_accuracy: f64,
}

/// None unless both tampered and authentic images are present.
pub fn image_level(all: &[ImageMetrics], threshold: f32) -> Option<ImageLevel> {
    let scores: Vec<f32> = all.iter().map(|m| m.score as f32).collect();
    let labels: Vec<bool> = all.iter().map(|m| !m.gt_empty).collect();
    let auc = roc_auc(&scores, &labels)?;
    let tampered = labels.iter().filter(|&&l| l).count();
    let authentic = labels.len() - tampered;
    let c = Confusion::at_threshold(&scores, &labels, threshold, false);
    let balanced_accuracy = 0.5 * (c.tp as f64 / tampered as f64 + c.tn as f64 / authentic as f64);
    Some(ImageLevel { tampered, authentic, auc, balanced_accuracy })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn confusion_f1_iou_mcc_by_hand() {
        // p:  0.9 0.8 0.6 0.5 0.2 0.1 ; gt: 1 1 0 1 0 0
        // p > 0.5 marks the first three: TP 2, FP 1, FN 1 (0.5 is not > 0.5), TN 2.
        let p = [0.9, 0.8, 0.6, 0.5, 0.2, 0.1];
        let g = [true, true, false, true, false, false];
        let c = Confusion::at_threshold(&p, &g, 0.5, false);
        assert_eq!(c, Confusion { tp: 2, fp: 1, fn_: 1, tn: 2 });
        assert!(close(c.f1(), 2.0 / 3.0), "{}", c.f1());
        assert!(close(c.iou(), 0.5));
        // MCC = (2*2 - 1*1) / sqrt(3*3*3*3) = 3 / 9.
        assert!(close(c.mcc(), 1.0 / 3.0));
        // Inverted: 1 - p > 0.5 marks 0.2 and 0.1 only: TP 0 -> F1 0.
        let inv = Confusion::at_threshold(&p, &g, 0.5, true);
        assert_eq!(inv, Confusion { tp: 0, fp: 2, fn_: 3, tn: 1 });
        let m = image_metrics(&p, &g, 6, 1, 0.5);
        assert!(close(m.f1, 2.0 / 3.0) && close(m.f1_permuted, 2.0 / 3.0) && !m.gt_empty);
    }

    #[test]
    fn permuted_f1_takes_the_inverted_map_when_it_is_better() {
        let p = [0.1, 0.2, 0.9, 0.8];
        let g = [true, true, false, false];
        let m = image_metrics(&p, &g, 2, 2, 0.5);
        assert!(close(m.f1, 0.0));
        assert!(close(m.f1_permuted, 1.0));
        assert!(close(m.auc.unwrap(), 0.0));
    }

    #[test]
    fn empty_ground_truth_scores_zero_and_has_no_auc() {
        let p = [0.9, 0.1, 0.7, 0.0];
        let g = [false; 4];
        let m = image_metrics(&p, &g, 4, 1, 0.5);
        assert!(m.gt_empty);
        assert_eq!((m.f1, m.f1_permuted, m.iou, m.best_f1, m.best_mcc), (0.0, 0.0, 0.0, 0.0, 0.0));
        assert_eq!(m.auc, None);
    }

    #[test]
    fn auc_counts_ties_as_one_half() {
        // Perfect separation.
        assert!(close(roc_auc(&[0.9, 0.8, 0.2, 0.1], &[true, true, false, false]).unwrap(), 1.0));
        // pos {0.5, 0.3}, neg {0.5, 0.1}: pairs (0.5,0.5)=1/2, (0.5,0.1)=1, (0.3,0.5)=0, (0.3,0.1)=1 -> 2.5/4.
        assert!(close(roc_auc(&[0.5, 0.3, 0.5, 0.1], &[true, true, false, false]).unwrap(), 0.625));
        // All predictions equal: exactly 1/2 whatever the order of the pixels.
        assert!(close(roc_auc(&[0.4; 6], &[true, false, true, false, false, true]).unwrap(), 0.5));
        assert!(close(roc_auc(&[0.4; 6], &[false, false, false, true, true, true]).unwrap(), 0.5));
        // One class only: undefined.
        assert_eq!(roc_auc(&[0.1, 0.9], &[true, true]), None);
    }

    #[test]
    fn best_threshold_metrics_find_the_best_cut() {
        // Cut at p >= 0.6 gives TP 3, FP 1, FN 0: F1 = 6/7; at p >= 0.7: TP 2, FN 1, FP 0: F1 = 0.8.
        let p = [0.9, 0.7, 0.6, 0.6, 0.1];
        let g = [true, true, true, false, false];
        let r = RankedMetrics::new(&p, &g);
        assert!(close(r.best_f1, 6.0 / 7.0), "{}", r.best_f1);
        // MCC at p >= 0.7: (2*2 - 0*1) / sqrt(2*3*2*3) = 4/6; at p >= 0.6: (3*1 - 1*0)/sqrt(4*3*2*1) = 3/sqrt(24).
        assert!(close(r.best_mcc, 4.0 / 6.0), "{}", r.best_mcc);
        // All-equal predictions: the only non-empty cut marks everything.
        let r = RankedMetrics::new(&[0.3; 4], &[true, false, false, false]);
        assert!(close(r.best_f1, 2.0 * 0.25 / 1.25), "{}", r.best_f1);
        assert_eq!(r.best_mcc, 0.0);
    }

    #[test]
    fn means_and_image_level() {
        let hit = image_metrics(&[0.9, 0.9, 0.9, 0.9], &[true, true, false, false], 2, 2, 0.5);
        let authentic = image_metrics(&[0.1; 4], &[false; 4], 2, 2, 0.5);
        let m = MeanMetrics::of([&hit, &authentic]);
        assert_eq!((m.images, m.auc_images), (2, 1));
        assert!(close(m.f1, hit.f1 / 2.0));
        assert!(close(m.auc.unwrap(), 0.5));
        let il = image_level(&[hit.clone(), authentic], 0.5).unwrap();
        assert_eq!((il.tampered, il.authentic), (1, 1));
        assert!(close(il.auc, 1.0) && close(il.balanced_accuracy, 1.0));
        assert_eq!(image_level(&[hit], 0.5), None);
    }

    /// The golden metric cases of `tests/fixtures/eval` (tools/make_eval_fixtures.py): float32
    /// maps, many with ties, and masks of awkward sizes, including all-tie maps, empty and full
    /// masks, one pixel, and values at and next to the threshold. Expected values computed by
    /// brute force (pairwise AUC, every threshold for best F1 / MCC) and by scikit-learn.
    #[test]
    fn metrics_match_brute_force_and_sklearn_fixtures() {
        use crate::eval::fixtures;
        // Ours against the brute force of the same definitions: only f64 rounding.
        const SAME_DEFINITION: f64 = 1e-12;
        // Against scikit-learn: AUC (roc_auc_score is tie-aware too) and MCC are the same numbers;
        // F1 and IoU carry the benchmark's 1e-8 guards in P, R, F1 and IoU, which move a value by
        // at most 3e-8 (sklearn's 2TP / (2TP + FP + FN) has none).
        const SKLEARN_SAME: f64 = 1e-12;
        const SKLEARN_GUARDED: f64 = 1e-7;
        let m = fixtures::manifest();
        println!("{}", fixtures::made_with(&m));
        let threshold = m["metrics"]["threshold"].as_f64().unwrap() as f32;
        let cases = m["metrics"]["cases"].as_array().expect("metric cases");
        let mut failures = Vec::new();
        let mut all = Vec::new();
        for c in cases {
            let (w, h) = (c["width"].as_u64().unwrap() as usize, c["height"].as_u64().unwrap() as usize);
            let bytes = fixtures::read(c["file"].as_str().unwrap());
            assert_eq!(bytes.len(), w * h * 5, "{}", c["name"]);
            let prob: Vec<f32> =
                bytes[..w * h * 4].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
            let gt: Vec<bool> = bytes[w * h * 4..].iter().map(|&b| b != 0).collect();
            let got = image_metrics(&prob, &gt, w, h, threshold);
            let (brute, sk) = (&c["brute"], &c["sklearn"]);
            let mut bad = Vec::new();
            let mut check = |what: &str, ours: Option<f64>, want: &serde_json::Value, tol: f64| {
                let ok = match (ours, want.as_f64()) {
                    (Some(a), Some(b)) => (a - b).abs() <= tol,
                    (None, None) => want.is_null(),
                    _ => false,
                };
                if !ok {
                    bad.push(format!("{what}: ours {ours:?}, expected {want} (tolerance {tol:e})"));
                }
            };
            check("auc vs brute-force pairs", got.auc, &brute["auc"], SAME_DEFINITION);
            check("f1 vs brute", Some(got.f1), &brute["f1"], SAME_DEFINITION);
            check("f1_permuted vs brute", Some(got.f1_permuted), &brute["f1_permuted"], SAME_DEFINITION);
            check("iou vs brute", Some(got.iou), &brute["iou"], SAME_DEFINITION);
            check("best_f1 vs brute (every threshold)", Some(got.best_f1), &brute["best_f1"], SAME_DEFINITION);
            check("best_mcc vs brute (every threshold)", Some(got.best_mcc), &brute["best_mcc"], SAME_DEFINITION);
            check("auc vs sklearn roc_auc_score", got.auc, &sk["roc_auc"], SKLEARN_SAME);
            check("f1 vs sklearn f1_score", Some(got.f1), &sk["f1"], SKLEARN_GUARDED);
            check("f1_permuted vs sklearn", Some(got.f1_permuted), &sk["f1_permuted"], SKLEARN_GUARDED);
            check("iou vs sklearn jaccard_score", Some(got.iou), &sk["jaccard"], SKLEARN_GUARDED);
            check("best_f1 vs sklearn f1_score", Some(got.best_f1), &sk["best_f1"], SKLEARN_GUARDED);
            check("best_mcc vs sklearn matthews_corrcoef", Some(got.best_mcc), &sk["best_mcc"], SKLEARN_SAME);
            let at = Confusion::at_threshold(&prob, &gt, threshold, false);
            check("mcc at the threshold vs sklearn", Some(at.mcc()), &sk["mcc"], SKLEARN_SAME);
            for (what, conf, key) in [
                ("p > t", at, "confusion"),
                ("1 - p > t", Confusion::at_threshold(&prob, &gt, threshold, true), "confusion_inverted"),
            ] {
                let want: Vec<u64> = brute[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
                if [conf.tp, conf.fp, conf.fn_, conf.tn] != want[..] {
                    bad.push(format!("counts of {what}: ours {conf:?}, expected [tp, fp, fn, tn] = {want:?}"));
                }
            }
            if got.gt_empty != (c["positives"].as_u64() == Some(0)) {
                bad.push(format!("gt_empty {} with {} positives", got.gt_empty, c["positives"]));
            }
            if !bad.is_empty() {
                let inputs = if w * h <= 64 {
                    format!("p = {prob:?}\n    gt = {:?}", gt.iter().map(|&g| g as u8).collect::<Vec<_>>())
                } else {
                    format!("inputs in tests/fixtures/eval/{}", c["file"].as_str().unwrap())
                };
                failures.push(format!(
                    "{} ({w}x{h}, seed {}, {}):\n  {}\n    {inputs}",
                    c["name"],
                    c["seed"],
                    c["description"],
                    bad.join("\n  ")
                ));
            }
            all.push(got);
        }
        // Means over images as the benchmark: every image counts, AUC over those where it is defined.
        let mean = MeanMetrics::of(&all);
        let want = &m["metrics"]["mean"];
        for (what, ours, key) in [
            ("mean f1", Some(mean.f1), "f1"),
            ("mean f1_permuted", Some(mean.f1_permuted), "f1_permuted"),
            ("mean iou", Some(mean.iou), "iou"),
            ("mean best_f1", Some(mean.best_f1), "best_f1"),
            ("mean best_mcc", Some(mean.best_mcc), "best_mcc"),
            ("mean auc", mean.auc, "auc"),
        ] {
            if !matches!((ours, want[key].as_f64()), (Some(a), Some(b)) if (a - b).abs() <= SAME_DEFINITION) {
                failures.push(format!("{what}: ours {ours:?}, expected {}", want[key]));
            }
        }
        if (mean.images, mean.auc_images)
            != (want["images"].as_u64().unwrap() as usize, want["auc_images"].as_u64().unwrap() as usize)
        {
            failures.push(format!("images / auc_images: ours {} / {}, expected {want}", mean.images, mean.auc_images));
        }
        println!("metric fixtures: {} cases, {} failing", cases.len(), failures.len());
        assert!(cases.len() >= 18, "only {} metric cases", cases.len());
        assert!(failures.is_empty(), "metrics differ from the fixtures:\n{}", failures.join("\n"));
    }
}
