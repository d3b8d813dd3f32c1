//! Larq's `models.summary`: per-layer precision, outputs, parameters per bit width, memory and
//! MACs per precision, then totals, model sizes, compression and the binarized MAC ratio. The
//! figures and the text follow Larq's rules exactly (see `docs/ARCHITECTURE.md`), including its
//! quirks: MACs only for Dense and 1-D/2-D convolutions, `?` for layers it does not count, and
//! BatchNormalization's beta and gamma folded into its moving statistics.

use std::collections::BTreeSet;

use serde::Serialize;

use super::Network;
use crate::layers::{MacCount, Product};

/// One weight as the summary counts it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WeightProfile {
    /// Its name.
    pub name: String,
    /// Elements.
    pub count: usize,
    /// Bits per element.
    pub bitwidth: u32,
    /// Updated by training.
    pub trainable: bool,
}

/// One layer's row.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LayerProfile {
    /// The layer's name.
    pub name: String,
    /// Its Keras class.
    pub class: String,
    /// Bits of its quantized input.
    pub input_precision: Option<u32>,
    /// Output shape with the batch axis as -1.
    /// `None` for a shared layer whose applications gave different shapes (Larq: "multiple").
    pub output_shape: Option<Vec<i64>>,
    /// The shapes of its further outputs (a split's parts), batch axis -1.
    pub more_output_shapes: Vec<Vec<i64>>,
    /// The weights counted.
    pub weights: Vec<WeightProfile>,
    /// MACs as (precision, count), or `None` where Larq does not count them (`?`).
    pub macs: Option<Vec<(u32, usize)>>,
}

impl LayerProfile {
    fn weight_count(&self, bitwidth: Option<u32>, trainable: Option<bool>) -> usize {
        self.weights
            .iter()
            .filter(|w| bitwidth.is_none_or(|b| w.bitwidth == b) && trainable.is_none_or(|t| w.trainable == t))
            .map(|w| w.count)
            .sum()
    }

    fn memory(&self, bits: impl Fn(&WeightProfile) -> u64) -> u64 {
        self.weights.iter().map(|w| bits(w) * w.count as u64).sum()
    }

    fn mac_count(&self, precision: Option<u32>) -> Option<usize> {
        self.macs.as_ref().map(|m| m.iter().filter(|(p, _)| precision.is_none_or(|q| *p == q)).map(|(_, n)| n).sum())
    }
}

/// The model's summary.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    /// The model's name.
    pub name: String,
    /// One row per top-level layer.
    pub layers: Vec<LayerProfile>,
    /// All parameters.
    pub total_params: usize,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// Non-trainable parameters.
    pub non_trainable_params: usize,
    /// Bits of all parameters at their precision.
    pub memory_bits: u64,
    /// Bits if every 16- or 32-bit weight had 8 bits.
    pub int8_fp_weights_memory_bits: u64,
    /// Bits if every weight had 32 bits.
    pub fp_equivalent_memory_bits: u64,
    /// `memory / fp_equivalent_memory`.
    pub compression_ratio: f64,
    /// All MACs.
    pub macs: usize,
    /// Fraction of MACs at 1 bit.
    pub binarized_mac_ratio: f64,
    /// Fraction of MACs at 2 bits.
    pub ternarized_mac_ratio: f64,
    /// How each quantized layer's product runs (not part of Larq's tables; see
    /// [`Summary::products_table`]).
    pub products: Vec<Product>,
}

/// Larq's tables, as `larq.models.summary(model)` prints them.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.table())
    }
}

/// Output pixels of one feature map as Larq computes them (from the output's rank).
fn output_pixels(shape: &[usize]) -> Option<usize> {
    match shape.len() {
        4 => Some(shape[1] * shape[2]),
        3 => Some(shape[1]),
        2 => Some(1),
        _ => None,
    }
}

impl Summary {
    /// The summary of a built network.
    pub fn new(name: &str, net: &Network) -> Self {
        let layers: Vec<LayerProfile> = net
            .layers
            .iter()
            .map(|l| {
                let mut weights: Vec<WeightProfile> = net.ctx.weights[l.weights.clone()]
                    .iter()
                    .map(|w| WeightProfile {
                        name: w.name.clone(),
                        count: net.graph.value(w.variable).shape.numel(),
                        bitwidth: w.precision,
                        trainable: w.trainable,
                    })
                    .collect();
                if l.class == "BatchNormalization" {
                    // Larq drops beta and gamma when moving statistics exist: inference folds them.
                    for (folded, into) in [("beta", "moving_mean"), ("gamma", "moving_variance")] {
                        let short = |w: &WeightProfile| w.name.rsplit('/').next().unwrap_or("").to_string();
                        if weights.iter().any(|w| short(w) == into) {
                            weights.retain(|w| short(w) != folded);
                        }
                    }
                }
                let pixels = l.output_shape.as_deref().and_then(output_pixels);
                let macs = match (l.macs, pixels) {
                    (MacCount::Unknown, _) | (_, None) => None,
                    (MacCount::Zero, Some(_)) => Some(vec![]),
                    (MacCount::PerOutputPixel, Some(p)) => Some(
                        weights
                            .iter()
                            .filter(|w| !w.name.contains("bias"))
                            .map(|w| (w.bitwidth.max(l.input_precision.unwrap_or(32)), w.count * p))
                            .collect(),
                    ),
                };
                let batch_free = |dims: &Vec<usize>| {
                    let mut d: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
                    if let Some(b) = d.first_mut() {
                        *b = -1;
                    }
                    d
                };
                let output_shape = l.output_shape.as_ref().map(batch_free);
                let more_output_shapes = l.more_output_shapes.iter().map(batch_free).collect();
                LayerProfile {
                    name: l.name.clone(),
                    class: l.class.clone(),
                    input_precision: l.input_precision,
                    output_shape,
                    more_output_shapes,
                    weights,
                    macs,
                }
            })
            .collect();
        let sum = |f: &dyn Fn(&LayerProfile) -> usize| layers.iter().map(f).sum::<usize>();
        let sum64 = |f: &dyn Fn(&LayerProfile) -> u64| layers.iter().map(f).sum::<u64>();
        let memory_bits = sum64(&|l| l.memory(|w| w.bitwidth as u64));
        let fp_equivalent_memory_bits = sum64(&|l| l.memory(|_| 32));
        let macs = sum(&|l| l.mac_count(None).unwrap_or(0));
        let ratio = |p: u32| sum(&|l| l.mac_count(Some(p)).unwrap_or(0)) as f64 / macs.max(1) as f64;
        Summary {
            name: name.to_string(),
            total_params: sum(&|l| l.weight_count(None, None)),
            trainable_params: sum(&|l| l.weight_count(None, Some(true))),
            non_trainable_params: sum(&|l| l.weight_count(None, Some(false))),
            memory_bits,
            int8_fp_weights_memory_bits: sum64(&|l| l.memory(|w| w.bitwidth.min(8) as u64)),
            fp_equivalent_memory_bits,
            compression_ratio: memory_bits as f64 / (fp_equivalent_memory_bits as f64).max(1e-8),
            macs,
            binarized_mac_ratio: ratio(1),
            ternarized_mac_ratio: ratio(2),
            layers,
            products: net.ctx.products.clone(),
        }
    }

    /// Which kernel each dense, convolution and depthwise layer's product runs on, with the
    /// values it takes and the bits per input element that training keeps for the backward:
    /// `xnor` (±1 x ±1), `planes` (two discrete encodings), `f32 x signs` (a float input against
    /// sign bits) or `f32`.
    pub fn products_table(&self) -> String {
        let header = ["Layer", "Kernel", "Input", "Weights", "Saved bits / input element"].map(String::from);
        let rows: Vec<[String; 5]> = std::iter::once(header)
            .chain(
                self.products
                    .iter()
                    .map(|p| [p.layer.clone(), p.kernel.to_string(), p.input.clone(), p.weights.clone(), p.saved_bits.to_string()]),
            )
            .collect();
        let widths: Vec<usize> = (0..5).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for r in &rows {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    /// The summary as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the summary is plain data")
    }

    /// Larq's two tables, as `larq.models.summary(model)` prints them.
    pub fn table(&self) -> String {
        self.table_with(true)
    }

    /// Larq's two tables with its `include_macs` argument: without, the summary table leaves
    /// out the MAC count and ratios (the layer table keeps its MAC columns, as Larq's does).
    pub fn table_with(&self, include_macs: bool) -> String {
        let bitwidths: BTreeSet<u32> = self.layers.iter().flat_map(|l| l.weights.iter().map(|w| w.bitwidth)).collect();
        let precisions: BTreeSet<u32> = self.layers.iter().flat_map(|l| l.macs.iter().flatten().map(|m| m.0)).collect();
        let mut header = vec!["Layer".to_string(), "Input prec.\n(bit)".to_string(), "Outputs".to_string()];
        header.extend(bitwidths.iter().map(|b| format!("# {b}-bit\nx 1")));
        header.push("Memory\n(kB)".to_string());
        header.extend(precisions.iter().map(|p| format!("{p}-bit MACs")));
        let kb = |bits: u64| if bits == 0 { "0".to_string() } else { format!("{:.2}", bits as f64 / 8192.0) };
        let row = |name: String,
                   prec: String,
                   outputs: String,
                   params: &dyn Fn(u32) -> usize,
                   memory: u64,
                   macs: &dyn Fn(u32) -> Option<usize>| {
            let mut r = vec![name, prec, outputs];
            r.extend(bitwidths.iter().map(|&b| params(b).to_string()));
            r.push(kb(memory));
            r.extend(precisions.iter().map(|&p| macs(p).map_or("?".to_string(), |n| n.to_string())));
            r
        };
        let mut body: Vec<Vec<String>> = self
            .layers
            .iter()
            .map(|l| {
                row(
                    l.name.clone(),
                    l.input_precision.map_or("-".to_string(), |p| p.to_string()),
                    match (&l.output_shape, l.more_output_shapes.is_empty()) {
                        (None, _) => "multiple".to_string(),
                        (Some(first), true) => python_tuple(first),
                        // Larq prints a layer of several outputs as the list of their shapes.
                        (Some(first), false) => {
                            let all: Vec<String> = std::iter::once(first).chain(&l.more_output_shapes).map(|s| python_tuple(s)).collect();
                            format!("[{}]", all.join(", "))
                        }
                    },
                    &|b| l.weight_count(Some(b), None),
                    l.memory(|w| w.bitwidth as u64),
                    &|p| l.mac_count(Some(p)),
                )
            })
            .collect();
        let total_params = |b: u32| self.layers.iter().map(|l| l.weight_count(Some(b), None)).sum::<usize>();
        let total_macs = |p: u32| Some(self.layers.iter().map(|l| l.mac_count(Some(p)).unwrap_or(0)).sum::<usize>());
        body.push(row("Total".into(), String::new(), String::new(), &total_params, self.memory_bits, &total_macs));
        body.insert(0, header);
        let mut out = ascii_table(&format!("{} stats", self.name), &body, true);
        let mut rows = vec![
            vec!["Total params".to_string(), readable_number(self.total_params as f64)],
            vec!["Trainable params".to_string(), readable_number(self.trainable_params as f64)],
            vec!["Non-trainable params".to_string(), readable_number(self.non_trainable_params as f64)],
            vec!["Model size".to_string(), readable_memory(self.memory_bits)],
            vec!["Model size (8-bit FP weights)".to_string(), readable_memory(self.int8_fp_weights_memory_bits)],
            vec!["Float-32 Equivalent".to_string(), readable_memory(self.fp_equivalent_memory_bits)],
            vec!["Compression Ratio of Memory".to_string(), format!("{:.2}", self.compression_ratio)],
        ];
        if include_macs {
            rows.push(vec!["Number of MACs".to_string(), readable_number(self.macs as f64)]);
            if self.binarized_mac_ratio > 0.0 {
                rows.push(vec!["Ratio of MACs that are binarized".to_string(), format!("{:.4}", self.binarized_mac_ratio)]);
            }
            if self.ternarized_mac_ratio > 0.0 {
                rows.push(vec!["Ratio of MACs that are ternarized".to_string(), format!("{:.4}", self.ternarized_mac_ratio)]);
            }
        }
        out.push_str(&ascii_table(&format!("{} summary", self.name), &rows, false));
        out
    }
}

/// A shape as Python prints a tuple.
fn python_tuple(d: &[i64]) -> String {
    match d {
        [x] => format!("({x},)"),
        _ => format!("({})", d.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// Larq's `_number_as_readable_str`: three significant figures with k/M/B/T.
fn readable_number(num: f64) -> String {
    let num = round_sig(num, 3);
    if num < 1000.0 {
        return format_g3(num);
    }
    if num >= 1e15 {
        return format!("{num:.2E}").replace('E', "E+");
    }
    let (mut num, mut magnitude) = (num, 0);
    while num.abs() >= 1000.0 && magnitude < 4 {
        magnitude += 1;
        num /= 1000.0;
    }
    format!("{}{}", format_g3(num), ["", " k", " M", " B", " T"][magnitude])
}

/// Python's `float(f"{x:.{n}g}")`.
fn round_sig(x: f64, n: usize) -> f64 {
    format!("{:.*e}", n - 1, x).parse().unwrap_or(x)
}

/// Python's `f"{x:.3g}"` for 0 <= x < 1000 already rounded to three figures, trailing zeros
/// and point removed.
fn format_g3(x: f64) -> String {
    if x == 0.0 {
        return "0".to_string();
    }
    let digits = x.log10().floor() as i32 + 1;
    let decimals = (3 - digits).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Larq's `memory_as_readable_str`.
fn readable_memory(bits: u64) -> String {
    let bytes = bits as f64 / 8.0;
    let mut i = 0;
    let mut v = bytes;
    while i < 3 && v >= 1024.0 {
        i += 1;
        v = bytes / 1024f64.powi(i as i32);
    }
    format!("{} {}", thousands(v), ["B", "KiB", "MiB", "GiB"][i])
}

/// `f"{v:,.2f}"`.
fn thousands(v: f64) -> String {
    let s = format!("{v:.2}");
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}.{frac}")
}

/// An ASCII table laid out as Python's `terminaltables.AsciiTable` does with inner column
/// borders off: the title in the top border, multi-line cells, one space of padding. Larq's
/// layer table (`numbers`) right-aligns all columns but the first and has borders under the
/// heading and above the last row; its summary table is left-aligned without them.
fn ascii_table(title: &str, rows: &[Vec<String>], numbers: bool) -> String {
    let ncol = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| rows.iter().filter_map(|r| r.get(c)).flat_map(|cell| cell.lines()).map(|l| l.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..ncol).map(width).collect();
    let inner: usize = widths.iter().map(|w| w + 2).sum();
    let rule = "-".repeat(inner);
    let mut out = String::new();
    // terminaltables leaves the title out when it does not fit.
    if title.chars().count() <= inner {
        out.push_str(&format!("+{title}{}+\n", "-".repeat(inner - title.chars().count())));
    } else {
        out.push_str(&format!("+{rule}+\n"));
    }
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<Vec<&str>> = row.iter().map(|c| c.lines().collect()).collect();
        let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for line in 0..height {
            out.push('|');
            for (c, w) in widths.iter().enumerate() {
                let text = cells.get(c).and_then(|l| l.get(line)).copied().unwrap_or("");
                // Padded by hand: format's width argument panics above 65,535 and names can be longer.
                let fill = " ".repeat(w - text.chars().count());
                if numbers && c > 0 {
                    out.push_str(&format!(" {fill}{text} "));
                } else {
                    out.push_str(&format!(" {text}{fill} "));
                }
            }
            out.push_str("|\n");
        }
        if numbers && (i == 0 || i + 2 == rows.len()) {
            out.push_str(&format!("+{rule}+\n"));
        }
    }
    out.push_str(&format!("+{rule}+\n"));
    out
}
