//! `S.panel.png`: the analyst's panel. The photo and each detector's heat map side by side in a
//! grid, every tile titled (model, score, verdict, regions), each map with its colour bar and its
//! first regions (by evidence) boxed and numbered (number n is `regions[n-1]` of that detector in `S.json`).
//! Tiles show the image scaled to fit [`TILE_MAX`] pixels (area-averaged down, blocky up).

use super::mask::{Mask, Region};
use super::overlay::{blend, ColourBar};
use super::text::{draw_label, draw_text, fill_rect, line_height, rect_outline, text_width};
use crate::imageio::RgbImage;

/// The longer side of each tile's picture, in pixels.
pub const TILE_MAX: usize = 480;
/// How many of a detector's regions are boxed and numbered (the first: `infer` ranks them by evidence).
pub const NUMBERED: usize = 5;
const PAD: usize = 10;
const TITLE_PX: f32 = 19.0;
const SUB_PX: f32 = 15.0;
const BAR_PX: f32 = 13.0;
const BOX: [u8; 3] = [0, 220, 255];
const TAMPERED: [u8; 3] = [200, 30, 30];
const CLEAN: [u8; 3] = [20, 130, 50];
const OTHER: [u8; 3] = [190, 120, 0];
const BLACK: [u8; 3] = [0, 0, 0];
const GRAY: [u8; 3] = [90, 90, 90];
const BACKGROUND: [u8; 3] = [255, 255, 255];

/// One detector's tile.
pub struct Entry<'a> {
    /// What the title calls it (the model's name, and its weight file for learned models).
    pub title: String,
    pub score: f32,
    /// The verdict's word: `tampered` is drawn red, `clean` green, any other (such as a
    /// calibrated `inconclusive`) amber.
    pub verdict: &'a str,
    /// The map at the image's size, its cleaned mask and its regions (largest first).
    pub prob: &'a [f32],
    pub mask: &'a Mask,
    pub regions: &'a [Region],
    /// Pairs of region indices to draw linked (a copy-move source and destination); empty for
    /// detectors that do not pair regions.
    pub links: &'a [(usize, usize)],
}

/// Links between numbered regions for matched box pairs (a copy-move's source and destination):
/// each box goes to the region among the first [`NUMBERED`] whose box overlaps it most; a pair
/// whose boxes land on the same region, or on none, gives no link.
pub fn pair_links(regions: &[Region], pairs: &[([usize; 4], [usize; 4])]) -> Vec<(usize, usize)> {
    let overlap = |r: &Region, b: [usize; 4]| {
        let w = r.x1.min(b[2]).saturating_sub(r.x0.max(b[0]));
        let h = r.y1.min(b[3]).saturating_sub(r.y0.max(b[1]));
        w * h
    };
    let best = |b: [usize; 4]| {
        let scored = regions.iter().take(NUMBERED).enumerate().map(|(i, r)| (overlap(r, b), i));
        scored.filter(|&(o, _)| o > 0).max_by_key(|&(o, i)| (o, std::cmp::Reverse(i))).map(|(_, i)| i)
    };
    pairs
        .iter()
        .filter_map(|&(a, b)| match (best(a), best(b)) {
            (Some(i), Some(j)) if i != j => Some((i, j)),
            _ => None,
        })
        .collect()
}

/// The picture size inside a tile for a `w x h` image.
fn picture_size(w: usize, h: usize) -> (usize, usize, f64) {
    let s = TILE_MAX as f64 / w.max(h).max(1) as f64;
    (((w as f64 * s).round() as usize).max(1), ((h as f64 * s).round() as usize).max(1), s)
}

fn title_h() -> usize {
    PAD + line_height(TITLE_PX) + 4 + line_height(SUB_PX) + 6
}

fn grid(tiles: usize) -> (usize, usize) {
    let cols = (1..=tiles.max(1)).find(|c| c * c >= tiles).unwrap_or(1);
    (cols, tiles.max(1).div_ceil(cols))
}

/// (tile width, tile height) for a `w x h` image.
fn tile_size(w: usize, h: usize) -> (usize, usize) {
    let (pw, ph, _) = picture_size(w, h);
    (PAD + pw + ColourBar { font_px: BAR_PX }.width() + PAD, title_h() + ph + PAD)
}

/// Size of the panel for a `w x h` image and `tiles` tiles (the photo counts as one): a grid of
/// `ceil(sqrt(tiles))` columns.
pub fn panel_size(w: usize, h: usize, tiles: usize) -> (usize, usize) {
    let (tw, th) = tile_size(w, h);
    let (cols, rows) = grid(tiles);
    (cols * tw, rows * th)
}

/// Resample `ch`-channel rows (`src(i)` is value `i`, row-major, channels interleaved) by averaging
/// each target pixel's footprint (at least one source pixel): area averaging going down, nearest
/// going up. Read through a function so a large photo or mask is not copied to floats first.
fn resample(src: impl Fn(usize) -> f32, sw: usize, sh: usize, ch: usize, dw: usize, dh: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; dw * dh * ch];
    let span = |d: usize, dn: usize, sn: usize| {
        let a = d * sn / dn;
        let b = ((d + 1) * sn).div_ceil(dn).clamp(a + 1, sn.max(a + 1));
        (a.min(sn - 1), b.min(sn))
    };
    for y in 0..dh {
        let (y0, y1) = span(y, dh, sh);
        for x in 0..dw {
            let (x0, x1) = span(x, dw, sw);
            let n = ((y1 - y0) * (x1 - x0)) as f32;
            for c in 0..ch {
                let mut acc = 0.0;
                for yy in y0..y1 {
                    for xx in x0..x1 {
                        acc += src((yy * sw + xx) * ch + c);
                    }
                }
                out[(y * dw + x) * ch + c] = acc / n;
            }
        }
    }
    out
}

/// `s` shortened with an ellipsis at the front to fit `max_w` pixels at `px`.
fn fit(s: &str, px: f32, max_w: usize) -> String {
    if text_width(s, px) <= max_w {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    (1..chars.len())
        .map(|k| format!("…{}", chars[k..].iter().collect::<String>()))
        .find(|t| text_width(t, px) <= max_w)
        .unwrap_or_default()
}

fn blit(dst: &mut RgbImage, src: &RgbImage, x: usize, y: usize) {
    for row in 0..src.height.min(dst.height.saturating_sub(y)) {
        let n = src.width.min(dst.width.saturating_sub(x));
        let d = ((y + row) * dst.width + x) * 3;
        dst.data[d..d + n * 3].copy_from_slice(&src.data[row * src.width * 3..][..n * 3]);
    }
}

fn line(img: &mut RgbImage, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
    let steps = (x1 - x0).abs().max((y1 - y0).abs()).max(1);
    for s in 0..=steps {
        fill_rect(img, x0 + (x1 - x0) * s / steps - 1, y0 + (y1 - y0) * s / steps - 1, 3, 3, c);
    }
}

/// The panel: the photo (titled `photo_title`, `photo_note` under it) and one tile per entry.
pub fn panel(img: &RgbImage, photo_title: &str, photo_note: &str, entries: &[Entry], threshold: f32) -> RgbImage {
    let (w, h) = (img.width, img.height);
    let (pw, ph, s) = picture_size(w, h);
    let (tw, th) = tile_size(w, h);
    let (cols, _) = grid(entries.len() + 1);
    let (width, height) = panel_size(w, h, entries.len() + 1);
    let mut out = RgbImage { width, height, data: BACKGROUND.repeat(width * height) };
    let photo_data: Vec<u8> =
        resample(|i| img.data[i] as f32, w, h, 3, pw, ph).iter().map(|v| v.round() as u8).collect();
    let photo = RgbImage { width: pw, height: ph, data: photo_data };
    let text_w = tw - 2 * PAD;
    for k in 0..=entries.len() {
        let (x, y) = ((k % cols) * tw, (k / cols) * th);
        let (px, py) = (x + PAD, y + title_h());
        let (tx, ty) = (px as i64, (y + PAD) as i64);
        let sub_y = ty + line_height(TITLE_PX) as i64 + 4;
        if k == 0 {
            draw_text(&mut out, tx, ty, &fit(photo_title, TITLE_PX, text_w), TITLE_PX, BLACK);
            draw_text(&mut out, tx, sub_y, &fit(photo_note, SUB_PX, text_w), SUB_PX, GRAY);
            blit(&mut out, &photo, px, py);
            continue;
        }
        let e = &entries[k - 1];
        let prob = resample(|i| e.prob[i], w, h, 1, pw, ph);
        let marks = resample(|i| if e.mask.data[i] { 1.0 } else { 0.0 }, w, h, 1, pw, ph);
        let mask = Mask { width: pw, height: ph, data: marks.iter().map(|&v| v >= 0.5).collect() };
        blit(&mut out, &blend(&photo, &prob, &mask), px, py);
        ColourBar { font_px: BAR_PX }.draw(&mut out, px + pw, py, py + ph, threshold);
        // Title: number, model; under it score, verdict and regions.
        draw_text(&mut out, tx, ty, &fit(&format!("{k}. {}", e.title), TITLE_PX, text_w), TITLE_PX, BLACK);
        let mut cx = tx + draw_text(&mut out, tx, sub_y, &format!("score {:.3}  ", e.score), SUB_PX, BLACK) as i64;
        let colour = match e.verdict {
            "tampered" => TAMPERED,
            "clean" => CLEAN,
            _ => OTHER,
        };
        cx += draw_text(&mut out, cx, sub_y, e.verdict, SUB_PX, colour) as i64;
        let n = e.regions.len();
        let regions = match n {
            0 => "  ·  no region".to_string(),
            1 => "  ·  1 region".to_string(),
            _ if n <= NUMBERED => format!("  ·  {n} regions"),
            _ => format!("  ·  {n} regions, top {NUMBERED} numbered"),
        };
        draw_text(&mut out, cx, sub_y, &regions, SUB_PX, GRAY);
        // Regions: boxes scaled to the picture, numbered from the largest; links between pairs.
        let to_px = |v: usize, base: usize| base as i64 + (v as f64 * s).round() as i64;
        let centre = |r: &Region| (to_px((r.x0 + r.x1) / 2, px), to_px((r.y0 + r.y1) / 2, py));
        for &(a, b) in e.links {
            if let (Some(ra), Some(rb)) = (e.regions.get(a), e.regions.get(b)) {
                line(&mut out, centre(ra), centre(rb), BOX);
            }
        }
        for (i, r) in e.regions.iter().take(NUMBERED).enumerate().rev() {
            let (x0, y0) = (to_px(r.x0, px), to_px(r.y0, py));
            let (x1, y1) = (to_px(r.x1, px).max(x0 + 4), to_px(r.y1, py).max(y0 + 4));
            rect_outline(&mut out, x0 - 1, y0 - 1, x1 + 1, y1 + 1, 1, BLACK);
            rect_outline(&mut out, x0, y0, x1, y1, 2, BOX);
            // The number sits on the box's corner, kept inside the picture.
            let label = format!("{}", i + 1);
            let lw = (text_width(&label, SUB_PX) + 6) as i64;
            let lh = (line_height(SUB_PX) + 2) as i64;
            let lx = x0.clamp(px as i64, (px + pw) as i64 - lw);
            let ly = (y0 - lh).clamp(py as i64, (py + ph) as i64 - lh);
            draw_label(&mut out, lx, ly, &label, SUB_PX, BLACK, BOX, 3);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_link_the_regions_their_boxes_overlap_most() {
        let r = |x0, y0, x1, y1| Region { x0, y0, x1, y1, area: (x1 - x0) * (y1 - y0), mean_prob: 1.0, max_prob: 1.0 };
        let regions = [r(0, 0, 10, 10), r(50, 50, 70, 70), r(100, 0, 120, 20)];
        let pairs =
            [([1, 1, 9, 9], [55, 52, 75, 75]), ([0, 0, 5, 5], [2, 2, 8, 8]), ([200, 200, 210, 210], [0, 0, 9, 9])];
        // The second pair lands on one region twice and the third on none: no links from them.
        assert_eq!(pair_links(&regions, &pairs), vec![(0, 1)]);
        assert!(pair_links(&[], &pairs).is_empty());
    }

    #[test]
    fn resample_averages_down_and_repeats_up() {
        let src = [0.0, 1.0, 1.0, 1.0];
        assert_eq!(resample(|i| src[i], 2, 2, 1, 1, 1), vec![0.75]);
        assert_eq!(resample(|i| i as f32, 2, 1, 1, 4, 1), vec![0.0, 0.0, 1.0, 1.0]);
        let odd = resample(|i| i as f32, 7, 5, 1, 3, 2);
        assert_eq!(odd.len(), 6);
    }

    #[test]
    fn panel_has_a_tile_per_entry_and_boxes_regions() {
        let (w, h) = (60, 40);
        let img = RgbImage::new(w, h, vec![120; w * h * 3]).unwrap();
        let mut prob = vec![0.0f32; w * h];
        for y in 10..20 {
            for x in 30..50 {
                prob[y * w + x] = 0.9;
            }
        }
        let mut mask = Mask::threshold(&prob, w, h, 0.5);
        let regions = super::super::regions(&mut mask, &prob, 1);
        let entry = |t: &str| Entry {
            title: t.into(),
            score: 0.9,
            verdict: "tampered",
            prob: &prob,
            mask: &mask,
            regions: &regions,
            links: &[(0, 0)],
        };
        let entries = [entry("a"), entry("b"), entry("c")];
        let p = panel(&img, "photo.png", "60 × 40", &entries, 0.5);
        assert_eq!((p.width, p.height), panel_size(w, h, 4));
        let (tw, th) = tile_size(w, h);
        assert_eq!((p.width, p.height), (2 * tw, 2 * th), "2 x 2 grid");
        assert!(p.data.chunks(3).any(|c| c == BOX), "regions are boxed");
        assert!(p.data.chunks(3).any(|c| c == TAMPERED), "verdicts are coloured");
        // Empty entries and a 1 x 1 image draw without panicking.
        let one = RgbImage::new(1, 1, vec![0; 3]).unwrap();
        let m1 = Mask::threshold(&[1.0], 1, 1, 0.5);
        let e1 = Entry {
            title: String::new(),
            score: 1.0,
            verdict: "inconclusive",
            prob: &[1.0],
            mask: &m1,
            regions: &[],
            links: &[],
        };
        let p1 = panel(&one, "", "", &[e1], 0.5);
        assert_eq!((p1.width, p1.height), panel_size(1, 1, 2));
        assert_eq!(fit("abcdefghijklmnopqrstuvwxyz", 15.0, 60).chars().next(), Some('…'));
    }
}
