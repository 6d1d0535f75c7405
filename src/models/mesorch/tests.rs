//! The Mesorch family's configuration, keys and registry behaviour (graph parity is in
//! tests/mesorch_parity.rs).

use std::collections::BTreeMap;

use super::config::{unused_prefixes, Hints};
use super::*;
use crate::weights::{select, TensorStore};

fn count(keys: &[(String, Vec<usize>)]) -> usize {
    keys.iter().map(|(_, s)| s.iter().product::<usize>()).sum()
}

fn head_keys() -> Vec<(String, Vec<usize>)> {
    vec![
        ("convnext.head.norm.weight".into(), vec![768]),
        ("convnext.head.norm.bias".into(), vec![768]),
        ("convnext.head.fc.weight".into(), vec![1000, 768]),
        ("convnext.head.fc.bias".into(), vec![1000]),
    ]
}

fn store_of(keys: &[(String, Vec<usize>)]) -> TensorStore {
    let mut s = TensorStore::new();
    for (k, shape) in keys {
        s.insert(k.clone(), Tensor::zeros(shape));
    }
    s
}

fn small(v: Variant) -> MesorchConfig {
    MesorchConfig {
        cnx_dims: [8, 16, 24, if v == Variant::Mesorch { 40 } else { 48 }],
        cnx_depths: [2, 1, 3, if v == Variant::Mesorch { 1 } else { 3 }],
        cnx_mlp_ratio: 3,
        mit_dims: [64, 128, 192, 256],
        mit_depths: [1, 2, 1, 3],
        mit_heads: [1, 2, 3, 4],
        mit_sr: [4, 2, 1, 1],
        mit_mlp_ratio: 2,
        // Mesorch-P has no gate: its fields keep the published values.
        gate_dim: if v == Variant::Mesorch { 12 } else { 192 },
        gate_hidden: if v == Variant::Mesorch { 20 } else { 768 },
        input: [64, 96],
        ..MesorchConfig::full(v)
    }
}

#[test]
fn expected_keys_reproduce_published_counts() {
    // Mesorch's state_dict keeps timm's classifier head (unused): 800 used + 4 head keys.
    let m = expected_keys(&MesorchConfig::full(Variant::Mesorch));
    let mut with_head = m.clone();
    with_head.extend(head_keys());
    assert_eq!((with_head.len(), count(&with_head)), (804, 85_753_944));
    // Mesorch_P deletes stage 3 and the head in its constructor.
    let p = expected_keys(&MesorchConfig::full(Variant::MesorchP));
    assert_eq!((p.len(), count(&p)), (743, 62_235_365));
    let names: std::collections::HashSet<_> = m.iter().map(|k| &k.0).collect();
    assert_eq!(names.len(), m.len(), "duplicate key names");
    for k in ["segformer.patch_embed1.proj.bias", "convnext.stem.0.bias", "segformer.block4.0.attn.sr.weight"] {
        assert!(!names.contains(&k.to_string()), "{k} must not exist");
    }
    for k in ["upsample.upsamplec2.weight", "upsample.upsamples4.2.bias", "gate.invert.0.weight", "inverse.7.bias"] {
        assert!(names.contains(&k.to_string()), "{k} missing");
    }
}

/// The graph builder takes exactly the keys `expected_keys` lists, with the same shapes: the key
/// list `convert` checks is the one the model reads.
#[test]
fn the_builder_takes_exactly_the_expected_keys() {
    for v in [Variant::Mesorch, Variant::MesorchP] {
        let cfg = MesorchConfig { input: [64, 64], ..small(v) };
        let w = WeightStore::synthetic(7);
        build_mesorch(&cfg, &w).unwrap();
        w.assert_took_exactly(&expected_keys(&cfg), &format!("{v:?}"));
    }
}

#[test]
fn select_checks_keys_and_shapes() {
    let cfg = MesorchConfig::full(Variant::Mesorch);
    let model = MesorchModel { cfg: cfg.clone(), opts: MesorchOptions::default() };
    let mut keys = expected_keys(&cfg);
    keys.extend(head_keys());
    keys.push(("something.else".into(), vec![1]));
    let s = store_of(&keys);
    let has = |p: &str| s.tensors.keys().any(|k| k.starts_with(p));
    assert!(MESORCH.recognises(&has) && !MESORCH_P.recognises(&has));
    assert_eq!(crate::models::recognise(s.tensors.keys().map(String::as_str)).unwrap().name(), "mesorch");
    let sel = select(s.clone(), "mesorch", &model.expected_keys(), &model.unused_prefixes()).unwrap();
    assert_eq!(sel.store.len(), 800);
    assert_eq!(sel.dropped.len(), 4);
    assert_eq!(sel.unexpected, vec!["something.else".to_string()]);

    let mut missing = s.clone();
    missing.tensors.remove("gate.conv2.bias");
    let m = select(missing, "mesorch", &model.expected_keys(), &[]).unwrap_err().message;
    assert!(m.contains("'gate.conv2.bias'") && m.contains("mesorch"), "{m}");

    let mut wrong = s.clone();
    wrong.insert("segformer.block1.0.attn.kv.weight", Tensor::zeros(&[64, 128]));
    let m = select(wrong, "mesorch", &model.expected_keys(), &[]).unwrap_err().message;
    assert!(
        m.contains("segformer.block1.0.attn.kv.weight") && m.contains("[64, 128]") && m.contains("[128, 64]"),
        "{m}"
    );

    // Mesorch-P: with the (unused) stage 3 present it is still recognised and the stage dropped.
    let pcfg = MesorchConfig::full(Variant::MesorchP);
    let mut pkeys = expected_keys(&pcfg);
    pkeys.extend(expected_keys(&cfg).into_iter().filter(|(k, _)| k.starts_with("convnext.stages.3.")));
    let ps = store_of(&pkeys);
    assert_eq!(crate::models::recognise(ps.tensors.keys().map(String::as_str)).unwrap().name(), "mesorch_p");
    let sel = select(ps, "mesorch_p", &expected_keys(&pcfg), &unused_prefixes(Variant::MesorchP)).unwrap();
    assert_eq!(sel.store.len(), 743);
    assert_eq!(sel.dropped.len(), 31);
    assert!(sel.unexpected.is_empty());
    assert!(pcfg.to_json().contains("\"convnext_stages\":3"));
    // Keys of neither: a clear error.
    let e = crate::models::recognise(["a.weight", "b.bias"].into_iter()).unwrap_err().message;
    assert!(e.contains("a.weight") && e.contains("--arch"), "{e}");
}

#[test]
fn config_is_read_off_the_shapes_and_the_metadata() {
    for v in [Variant::Mesorch, Variant::MesorchP] {
        let want = small(v);
        let s = store_of(&expected_keys(&want));
        let shapes: BTreeMap<&str, &[usize]> =
            s.tensors.iter().map(|(k, t)| (k.as_str(), t.shape.as_slice())).collect();
        // Heads default to dim / 64 and the input to 512 x 512; the metadata overrides both.
        let got = MesorchConfig::from_shapes(&shapes, v, &BTreeMap::new());
        assert_eq!(got, MesorchConfig { mit_heads: [1, 2, 3, 4], input: [512, 512], ..want.clone() }, "{v:?}");
        let mut meta = BTreeMap::new();
        meta.insert("config".to_string(), MesorchConfig { mit_heads: [1, 1, 2, 2], ..want.clone() }.to_json());
        meta.insert("input_size".to_string(), "[64,96]".to_string());
        let got = MesorchConfig::from_shapes(&shapes, v, &meta);
        assert_eq!(got, MesorchConfig { mit_heads: [1, 1, 2, 2], ..want.clone() }, "{v:?}");
        // Through the registry, from a weight store.
        let ws = WeightStore::from_store(TensorStore { metadata: meta, ..s });
        let family = crate::models::family(v.name()).unwrap();
        let m = family.configure(&ws).unwrap();
        assert_eq!(m.input(), InputMode::Resized([64, 96]));
        assert_eq!(m.config_json(), MesorchConfig { mit_heads: [1, 1, 2, 2], ..want }.to_json());
    }
    assert_eq!(
        MesorchConfig::from_shapes(&BTreeMap::new(), Variant::Mesorch, &BTreeMap::new()),
        MesorchConfig::full(Variant::Mesorch)
    );
    // Malformed metadata is no hint; an input that is not a multiple of 32 is refused.
    let mut meta = BTreeMap::new();
    meta.insert("input_size".to_string(), "[256,-1]".to_string());
    assert_eq!(Hints::from_metadata(&meta), Hints::default());
    meta.insert("input_size".to_string(), "[100,64]".to_string());
    let s = store_of(&expected_keys(&small(Variant::Mesorch)));
    let ws = WeightStore::from_store(TensorStore { metadata: meta, ..s });
    let e = MESORCH.configure(&ws).err().unwrap().message;
    assert!(e.contains("multiple of 32"), "{e}");
}

/// Scales as the model describes them: Mesorch's eight logits with gate weights, Mesorch-P's five
/// without.
#[test]
fn scales_name_their_outputs() {
    let m = MesorchModel { cfg: MesorchConfig::full(Variant::Mesorch), opts: MesorchOptions::default() };
    let s = m.scales();
    assert_eq!(s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["c1", "c2", "c3", "c4", "s1", "s2", "s3", "s4"]);
    assert_eq!(s[5].map, MapRef { output: "scale_logits", channel: 5, kind: MapKind::Logit });
    assert_eq!(s[5].weight, Some(MapRef { output: "gate", channel: 5, kind: MapKind::Weight }));
    let p = MesorchModel { cfg: MesorchConfig::full(Variant::MesorchP), opts: MesorchOptions::default() };
    assert!(p.scales().iter().all(|s| s.weight.is_none()));
    assert_eq!(p.scales().len(), 5);
    let cfg = MesorchConfig::full(Variant::MesorchP);
    assert_eq!((0..5).map(|i| cfg.scale(i)).collect::<Vec<_>>(), [('c', 1), ('c', 3), ('s', 2), ('s', 3), ('s', 4)]);
}
