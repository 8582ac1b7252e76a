//! Constant folding: the shape arithmetic and reshaped weights exporters emit.

use super::super::OnnxError;
use super::super::proto::{NodeProto, data_type};
use super::{Attrs, Const, Lowering, Result, err, reshape_dims};

impl Lowering {
    /// Evaluates a node whose inputs are all constants.
    pub(super) fn fold(&mut self, node: &NodeProto, op: &str, a: &Attrs) -> Result<()> {
        let ins: Vec<Const> = node
            .input
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.is_empty())
            .map(|(i, _)| self.konst(node, i, "input"))
            .collect::<Result<_>>()?;
        let first = ins.first().cloned().ok_or_else(|| OnnxError("no inputs".into()))?;
        let c = match op {
            "Identity" | "Dropout" => first,
            "Cast" => match a.int("to", 1) as i32 {
                data_type::FLOAT | data_type::DOUBLE => Const::F32(first.dims().to_vec(), first.as_f32()),
                data_type::INT64 | data_type::INT32 => Const::I64(first.dims().to_vec(), first.as_i64()),
                t => return err(format!("Cast to type {t} is not supported")),
            },
            "Reshape" => {
                let target = ins.get(1).ok_or_else(|| OnnxError("shape missing".into()))?.as_i64();
                let dims = reshape_dims(first.dims(), &target, a.int("allowzero", 0) != 0)?;
                first.with_dims(dims)
            }
            "Unsqueeze" | "Squeeze" => {
                let axes = match ins.get(1) {
                    Some(x) => x.as_i64(),
                    None => a.ints("axes").unwrap_or_default(),
                };
                let mut dims = first.dims().to_vec();
                if op == "Unsqueeze" {
                    let r = (dims.len() + axes.len()) as i64;
                    let mut ax: Vec<usize> =
                        axes.iter().map(|&x| (if x < 0 { x + r } else { x }) as usize).collect();
                    ax.sort();
                    for x in ax {
                        if x > dims.len() {
                            return err(format!("Unsqueeze axis {x} out of range"));
                        }
                        dims.insert(x, 1);
                    }
                } else if axes.is_empty() {
                    dims.retain(|&d| d != 1);
                } else {
                    let r = dims.len() as i64;
                    let mut ax: Vec<usize> =
                        axes.iter().map(|&x| (if x < 0 { x + r } else { x }) as usize).collect();
                    ax.sort();
                    for x in ax.into_iter().rev() {
                        if dims.get(x) != Some(&1) {
                            return err(format!("Squeeze axis {x} is not of size 1"));
                        }
                        dims.remove(x);
                    }
                }
                first.with_dims(dims)
            }
            "Gather" => {
                let idx = ins.get(1).ok_or_else(|| OnnxError("indices missing".into()))?;
                if a.int("axis", 0) != 0 || first.dims().len() != 1 {
                    return err("only Gather on axis 0 of a 1-D constant is supported");
                }
                let n = first.dims()[0] as i64;
                let pick = |v: i64| -> Result<usize> {
                    let i = if v < 0 { v + n } else { v };
                    if (0..n).contains(&i) {
                        Ok(i as usize)
                    } else {
                        err(format!("Gather index {v} out of range"))
                    }
                };
                let ix: Vec<usize> = idx.as_i64().into_iter().map(pick).collect::<Result<_>>()?;
                let dims = idx.dims().to_vec();
                match first {
                    Const::I64(_, v) => Const::I64(dims, ix.iter().map(|&i| v[i]).collect()),
                    Const::F32(_, v) => Const::F32(dims, ix.iter().map(|&i| v[i]).collect()),
                }
            }
            "Concat" => {
                let all_1d = ins.iter().all(|c| c.dims().len() <= 1);
                if !all_1d {
                    return err("only Concat of 1-D constants is supported");
                }
                if ins.iter().any(|c| matches!(c, Const::F32(..))) {
                    let v: Vec<f32> = ins.iter().flat_map(Const::as_f32).collect();
                    Const::F32(vec![v.len()], v)
                } else {
                    let v: Vec<i64> = ins.iter().flat_map(Const::as_i64).collect();
                    Const::I64(vec![v.len()], v)
                }
            }
            "Transpose" => {
                let dims = first.dims().to_vec();
                let perm: Vec<usize> = match a.ints("perm") {
                    Some(p) => p.iter().map(|&x| x as usize).collect(),
                    None => (0..dims.len()).rev().collect(),
                };
                let mut sorted = perm.clone();
                sorted.sort();
                if sorted != (0..dims.len()).collect::<Vec<_>>() {
                    return err(format!("bad perm {perm:?}"));
                }
                let v = first.as_f32();
                let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
                let strides = strides_of(&dims);
                let n = v.len();
                let mut out = vec![0f32; n];
                let mut idx = vec![0usize; dims.len()];
                for o in out.iter_mut() {
                    let src: usize = idx.iter().zip(&perm).map(|(&i, &p)| i * strides[p]).sum();
                    *o = v[src];
                    for ax in (0..idx.len()).rev() {
                        idx[ax] += 1;
                        if idx[ax] < out_dims[ax] {
                            break;
                        }
                        idx[ax] = 0;
                    }
                }
                Const::F32(out_dims, out)
            }
            "Neg" => Const::F32(first.dims().to_vec(), first.as_f32().iter().map(|v| -v).collect()),
            "Add" | "Sub" | "Mul" | "Div" => {
                let b = ins.get(1).ok_or_else(|| OnnxError("second input missing".into()))?;
                let (x, y) = (first.as_f32(), b.as_f32());
                let (dims, xs, ys) = if x.len() == y.len() {
                    (first.dims().to_vec(), x, y)
                } else if y.len() == 1 {
                    let n = x.len();
                    (first.dims().to_vec(), x, vec![y[0]; n])
                } else if x.len() == 1 {
                    let n = y.len();
                    (b.dims().to_vec(), vec![x[0]; n], y)
                } else {
                    return err("broadcasting between constants of different sizes is not supported");
                };
                let f = |p: f32, q: f32| match op {
                    "Add" => p + q,
                    "Sub" => p - q,
                    "Mul" => p * q,
                    _ => p / q,
                };
                let v: Vec<f32> = xs.iter().zip(&ys).map(|(&p, &q)| f(p, q)).collect();
                if matches!((&first, b), (Const::I64(..), Const::I64(..))) {
                    Const::I64(dims, v.iter().map(|&z| z as i64).collect())
                } else {
                    Const::F32(dims, v)
                }
            }
            other => return err(format!("folding constant {other} is not supported")),
        };
        self.set_const(node, c)
    }
}

fn strides_of(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}
