/**
 * The zoo's domain types: a model architecture resolved down to every layer, so that the
 * arithmetic (parameters, FLOPs, activation and state bytes) never has to interpret free text.
 * Built from a models.json entry plus its structured overlay, or from a model file.
 */

/** How a norm is parameterised. LayerNorm with bias has weight + bias; RMSNorm and bias-free LayerNorm only a weight. */
export type NormSpec =
  | { readonly kind: 'layernorm'; readonly bias: boolean }
  /** `unitOffset`: the weight is applied as (1 + w), as Gemma does; same parameter count. */
  | { readonly kind: 'rmsnorm'; readonly unitOffset: boolean };

/** Where the norms sit in a transformer block, and how many there are per layer. */
export type BlockLayout =
  /** x + attn(norm(x)), then x + mlp(norm(x)): two norms per layer. */
  | { readonly kind: 'pre' }
  /** Pre- and post-norms around both branches (Gemma 2/3, Grok-1): four norms per layer. */
  | { readonly kind: 'sandwich' }
  /** x + attn(n1(x)) + mlp(n2(x)); `norms` is 1 when both branches share one norm (Falcon-7B, Command R). */
  | { readonly kind: 'parallel'; readonly norms: 1 | 2 }
  /** Post-norm (x + f(x) then norm; MiniMax-Text-01's DeepNorm-style scaling): two norms per layer. */
  | { readonly kind: 'post' };

/** How token positions enter the model. Only learned positions carry parameters. */
export type Positions =
  | {
      readonly kind: 'rope';
      /** Fraction of each head's dims that rotate (GPT-NeoX 0.25, ChatGLM 0.5). */
      readonly rotaryFraction: number;
      /** Every n-th layer uses no positional encoding (Llama 4's NoPE layers); null when none. */
      readonly noRopeLayerInterval: number | null;
    }
  | { readonly kind: 'alibi' }
  | { readonly kind: 'learned'; readonly rows: number }
  | { readonly kind: 'none' };

/** Which keys a query may attend to, which caps the attention term of FLOPs and activations. */
export type AttentionSpan =
  | { readonly kind: 'full' }
  /** Each query sees itself and the previous `windowTokens - 1` tokens. */
  | { readonly kind: 'sliding'; readonly windowTokens: number }
  /** Queries see only keys in their own aligned chunk (Llama 4's local layers). */
  | { readonly kind: 'chunked'; readonly chunkTokens: number };

/** Per-head query/key normalisation and the shape of its weights. */
export type QkNorm =
  | { readonly kind: 'none' }
  /** Parameter-free L2 normalisation (Llama 4 Scout). */
  | { readonly kind: 'l2' }
  /**
   * A learned norm on q and k. `shape` is `head-dim` when one weight of head_dim is shared by all
   * heads (Qwen3, Gemma 3) and `per-head` when each head has its own (Command R+: heads x head_dim).
   */
  | {
      readonly kind: 'rmsnorm' | 'layernorm';
      readonly shape: 'head-dim' | 'per-head';
      readonly bias: boolean;
    };

export type AttentionSpec =
  | {
      /** Softmax attention: MHA when kvHeads = heads, GQA when fewer, MQA when 1. */
      readonly kind: 'softmax';
      readonly heads: number;
      readonly kvHeads: number;
      readonly headDim: number;
      readonly span: AttentionSpan;
    }
  | {
      /** Multi-head latent attention (DeepSeek-V2/V3): low-rank q and kv with RMSNorms on the latents. */
      readonly kind: 'mla';
      readonly heads: number;
      /** null: q is projected directly from the hidden state (DeepSeek-V2-Lite). */
      readonly qLoraRank: number | null;
      readonly kvLoraRank: number;
      readonly qkNopeHeadDim: number;
      readonly qkRopeHeadDim: number;
      readonly vHeadDim: number;
      readonly span: AttentionSpan;
    }
  | {
      /** Linear ("lightning") attention: a per-head d x d state instead of a softmax over keys. */
      readonly kind: 'linear';
      readonly heads: number;
      readonly headDim: number;
      /** A sigmoid output gate (hidden -> heads*headDim) and an RMSNorm on the attention output. */
      readonly outputGate: boolean;
      /** Block length of the block-wise kernel; within a block the quadratic form is used. */
      readonly blockTokens: number;
    };

export type MlpSpec =
  | { readonly kind: 'dense'; readonly intermediateSize: number; readonly gated: boolean }
  | {
      readonly kind: 'moe';
      readonly experts: number;
      readonly expertsPerToken: number;
      readonly expertIntermediateSize: number;
      /** Combined width of the always-on shared experts; 0 when there are none. */
      readonly sharedIntermediateSize: number;
      /** A sigmoid gate hidden x 1 on the shared expert's output (Qwen MoE). */
      readonly sharedExpertGate: boolean;
      /** A learned per-expert bias on the routing scores (DeepSeek-V3's e_score_correction_bias). */
      readonly routerBias: boolean;
      readonly gated: boolean;
    };

/** One transformer layer. */
export interface LayerSpec {
  readonly index: number;
  readonly attention: AttentionSpec;
  readonly mlp: MlpSpec;
}

/** What the authors reported, kept beside the computed figures for comparison. */
export interface ReportedSizes {
  readonly totalBillions: number | null;
  readonly activeBillions: number | null;
}

/** A fully resolved model architecture. */
export interface ModelArchitecture {
  readonly id: string;
  readonly family: string | null;
  readonly name: string;
  readonly hfId: string | null;
  readonly hiddenSize: number;
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number | null;
  /** The config's head counts, as a summary; the layers hold what each layer actually uses. */
  readonly numAttentionHeads: number;
  readonly numKeyValueHeads: number;
  readonly headDim: number;
  /** Width of the dense MLP layers; null when every layer is MoE. */
  readonly intermediateSize: number | null;
  readonly mlpActivation: string;
  readonly gatedMlp: boolean;
  readonly tiedEmbeddings: boolean;
  readonly positions: Positions;
  /** A norm right after the token embedding (BLOOM). */
  readonly embeddingNorm: boolean;
  readonly norm: NormSpec;
  readonly blockLayout: BlockLayout;
  readonly finalNorm: boolean;
  /** `qkv`: biases on q, k, v; `all`: also on the output projection. */
  readonly attentionBias: 'none' | 'qkv' | 'all';
  readonly mlpBias: boolean;
  readonly qkNorm: QkNorm;
  readonly layers: readonly LayerSpec[];
  readonly reported: ReportedSizes;
  /** Facts the source could not confirm, as models.json lists them. */
  readonly unconfirmed: readonly string[];
  readonly source: string | null;
  readonly notes: string | null;
}
