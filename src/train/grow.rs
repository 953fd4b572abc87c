//! A deeper decoder from a trained one (LLaMA Pro's identity blocks): after each trained
//! layer, copies of it whose attention and MLP output projections are zero, so they add
//! nothing to the residual stream until trained and the grown model's outputs start equal.

use anyhow::{Result, bail};
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::tensor::Tensor;
use lcl_model::Llama;

/// `llm` deepened to `depth` layers by identity blocks spread evenly, each after the layer it
/// copies (fresh parameter ids, so the optimiser sees new parameters).
pub fn grow(mut llm: Llama, depth: usize) -> Result<Llama> {
    let old = llm.layers.len();
    if depth < old {
        bail!("cannot shrink {old} decoder layers to {depth}: a decoder can only be deepened");
    }
    let added = depth - old;
    let mut layers = Vec::with_capacity(depth);
    for (i, layer) in std::mem::take(&mut llm.layers).into_iter().enumerate() {
        let copies = (i + 1) * added / old - i * added / old;
        let identities: Vec<_> = (0..copies)
            .map(|_| layer.clone().map(&mut IdentityBlock::default()))
            .collect();
        layers.push(layer);
        layers.extend(identities);
    }
    llm.layers = layers;
    Ok(llm)
}

/// Turns a layer's copy into an identity block: every parameter fresh, the output
/// projections (`self_attn.o_proj`, `mlp.down_proj`) zero.
#[derive(Default)]
struct IdentityBlock {
    path: Vec<String>,
}

impl ModuleMapper for IdentityBlock {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let output_projection =
            path.ends_with("self_attn.o_proj.weight") || path.ends_with("mlp.down_proj.weight");
        let value = param.val();
        let value = if output_projection {
            value.zeros_like()
        } else {
            value
        };
        Param::initialized(ParamId::new(), value)
    }
}
