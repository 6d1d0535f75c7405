//! The Open Inference Protocol v2 (KServe's v2 REST API) as `serve` speaks it: the request's
//! image input, the outputs asked for, and the answer.
//!
//! Request (`POST /v2/models/{name}/infer`, JSON): one input of datatype `BYTES` and shape `[1]`
//! (any name; `image` by convention) whose one element is the encoded image (PNG, JPEG, TIFF, BMP,
//! WebP) in base64, or, with the binary tensor extension (header `Inference-Header-Content-Length`
//! and the input's `parameters.binary_data_size`), the raw bytes after the JSON. `outputs` picks
//! among [`OUTPUTS`]; without it the answer has `score`, `verdict`, `regions` and `report`.
//! `prob` is the FP32 probability map `[H, W]`, `prob_png` the same map as a base64 8-bit PNG.
//! `regions` and `report` are one-element BYTES tensors holding JSON text (the report's `regions`
//! array, the whole report as `infer` writes it: docs/report.md).

use base64::Engine as _;
use serde_json::{json, Value};

use super::worker::{Answer, ModelInfo, ProbForm};
use crate::error::{Error, Result};

/// The outputs a request may ask for.
pub const OUTPUTS: [&str; 6] = ["score", "verdict", "regions", "report", "prob", "prob_png"];
const DEFAULT_OUTPUTS: [&str; 4] = ["score", "verdict", "regions", "report"];

/// A parsed inference request.
#[derive(Debug)]
pub struct Request {
    pub id: Option<String>,
    pub image: Vec<u8>,
    pub outputs: Vec<String>,
}

impl Request {
    /// How the probability map is wanted, if at all.
    pub fn prob(&self) -> Option<ProbForm> {
        if self.outputs.iter().any(|o| o == "prob") {
            Some(ProbForm::Fp32)
        } else if self.outputs.iter().any(|o| o == "prob_png") {
            Some(ProbForm::Png)
        } else {
            None
        }
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid(msg.into())
}

/// Parse a JSON request body; `json_len` is the `Inference-Header-Content-Length` header (the
/// JSON's length when binary tensor data follows it).
pub fn parse(body: &[u8], json_len: Option<usize>) -> Result<Request> {
    let (head, binary) = match json_len {
        Some(n) if n <= body.len() => body.split_at(n),
        Some(n) => {
            return Err(bad(format!(
                "Inference-Header-Content-Length {n} is longer than the body ({} bytes)",
                body.len()
            )))
        }
        None => (body, &[][..]),
    };
    let v: Value = serde_json::from_slice(head).map_err(|e| bad(format!("the request is not JSON: {e}")))?;
    let id = v.get("id").and_then(Value::as_str).map(str::to_string);
    let inputs = v.get("inputs").and_then(Value::as_array).ok_or_else(|| bad("the request has no \"inputs\" array"))?;
    let [input] = inputs.as_slice() else {
        return Err(bad(format!("expected one input (the image as BYTES), got {}", inputs.len())));
    };
    let name = input.get("name").and_then(Value::as_str).unwrap_or("image");
    let datatype = input.get("datatype").and_then(Value::as_str).unwrap_or("");
    if datatype != "BYTES" {
        return Err(bad(format!("input '{name}': datatype must be BYTES (the encoded image), not '{datatype}'")));
    }
    let shape: Vec<i64> = input
        .get("shape")
        .and_then(Value::as_array)
        .map_or(Vec::new(), |s| s.iter().filter_map(Value::as_i64).collect());
    if shape.iter().product::<i64>() != 1 {
        return Err(bad(format!("input '{name}': shape {shape:?}: one image per request (shape [1])")));
    }
    let binary_size = input.pointer("/parameters/binary_data_size").and_then(Value::as_u64);
    let image = match binary_size {
        Some(n) if n as usize == binary.len() => binary.to_vec(),
        Some(n) => {
            return Err(bad(format!(
                "input '{name}': binary_data_size {n} but {} bytes follow the JSON header",
                binary.len()
            )))
        }
        None => {
            let mut data = input.get("data").ok_or_else(|| bad(format!("input '{name}' has no \"data\"")))?;
            while let Some([inner]) = data.as_array().map(Vec::as_slice) {
                data = inner; // [["..."]] as well as ["..."]
            }
            let text = data.as_str().ok_or_else(|| {
                bad(format!("input '{name}': \"data\" must hold one base64 string (the encoded image)"))
            })?;
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| bad(format!("input '{name}': the image is not valid base64: {e}")))?
        }
    };
    let outputs = match v.get("outputs").and_then(Value::as_array) {
        None => DEFAULT_OUTPUTS.iter().map(|s| s.to_string()).collect(),
        Some(list) => {
            let mut names = Vec::new();
            for o in list {
                let n = o.get("name").and_then(Value::as_str).ok_or_else(|| bad("an output without \"name\""))?;
                if !OUTPUTS.contains(&n) {
                    return Err(bad(format!("unknown output '{n}'; this model has {}", OUTPUTS.join(", "))));
                }
                names.push(n.to_string());
            }
            names
        }
    };
    Ok(Request { id, image, outputs })
}

fn bytes_tensor(name: &str, text: String, content_type: &str) -> Value {
    json!({"name": name, "datatype": "BYTES", "shape": [1], "data": [text], "parameters": {"content_type": content_type}})
}

/// The answer's JSON for `req`.
pub fn answer(model: &ModelInfo, req: &Request, a: &Answer) -> Value {
    let r = &a.report;
    let mut outputs = Vec::new();
    for name in &req.outputs {
        outputs.push(match name.as_str() {
            "score" => json!({"name": "score", "datatype": "FP32", "shape": [1], "data": [r["score"]]}),
            "verdict" => json!({"name": "verdict", "datatype": "BYTES", "shape": [1], "data": [r["verdict"]]}),
            "regions" => bytes_tensor("regions", r["regions"].to_string(), "application/json"),
            "report" => bytes_tensor("report", r.to_string(), "application/json"),
            "prob" => match &a.prob {
                Some(p) => json!({"name": "prob", "datatype": "FP32", "shape": [p.height, p.width], "data": p.data}),
                None => continue,
            },
            "prob_png" => match &a.prob_png {
                Some(png) => bytes_tensor("prob_png", base64::engine::general_purpose::STANDARD.encode(png), "base64"),
                None => continue,
            },
            _ => continue,
        });
    }
    let mut out = json!({"model_name": model.name, "outputs": outputs});
    if let Some(v) = &model.version {
        out["model_version"] = json!(v);
    }
    if let Some(id) = &req.id {
        out["id"] = json!(id);
    }
    out
}

/// `GET /v2/models/{name}`.
pub fn metadata(model: &ModelInfo) -> Value {
    let t = |name: &str, datatype: &str, shape: Value| json!({"name": name, "datatype": datatype, "shape": shape});
    json!({
        "name": model.name,
        "versions": model.version.iter().collect::<Vec<_>>(),
        "platform": "wgpu-forge",
        "inputs": [t("image", "BYTES", json!([1]))],
        "outputs": [
            t("score", "FP32", json!([1])),
            t("verdict", "BYTES", json!([1])),
            t("regions", "BYTES", json!([1])),
            t("report", "BYTES", json!([1])),
            t("prob", "FP32", json!([-1, -1])),
            t("prob_png", "BYTES", json!([1])),
        ],
        "parameters": {"adapter": model.adapter},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_binary_inputs_and_output_choice() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG...");
        let body = json!({"id": "r1", "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [b64]}],
                          "outputs": [{"name": "prob_png"}, {"name": "score"}]});
        let r = parse(body.to_string().as_bytes(), None).unwrap();
        assert_eq!(
            (r.id.as_deref(), r.image.as_slice(), r.prob()),
            (Some("r1"), &b"\x89PNG..."[..], Some(ProbForm::Png))
        );
        let head = json!({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 3}}]}).to_string();
        let mut raw = head.clone().into_bytes();
        raw.extend_from_slice(b"abc");
        let r = parse(&raw, Some(head.len())).unwrap();
        assert_eq!((r.image.as_slice(), r.outputs.len(), r.prob()), (&b"abc"[..], 4, None));
        let err = |v: Value| parse(v.to_string().as_bytes(), None).unwrap_err().message;
        assert!(err(json!({"inputs": []})).contains("one input"));
        assert!(err(json!({"inputs": [{"datatype": "FP32", "shape": [1], "data": [1.0]}]})).contains("BYTES"));
        assert!(err(json!({"inputs": [{"datatype": "BYTES", "shape": [1], "data": ["%%"]}]})).contains("base64"));
        assert!(err(json!({"inputs": [{"datatype": "BYTES", "shape": [2], "data": ["", ""]}]})).contains("one image"));
        let e =
            err(json!({"inputs": [{"datatype": "BYTES", "shape": [1], "data": [""]}], "outputs": [{"name": "mask"}]}));
        assert!(e.contains("unknown output 'mask'"), "{e}");
        assert!(parse(b"{not json", None).unwrap_err().message.contains("not JSON"));
    }
}
