export type {
  AttentionSpan,
  AttentionSpec,
  BlockLayout,
  LayerSpec,
  MlpSpec,
  ModelArchitecture,
  NormSpec,
  Positions,
  QkNorm,
  ReportedSizes,
} from './model.ts';
export type { ModelConfig } from './model-config.ts';
export { getModel, listModels, modelIds, modelOverlay } from './catalog.ts';
export { loadModelFile, looksLikeModelFile, resolveModel } from './model-file.ts';
export { activeParams, nonEmbeddingParams, parameterBreakdown, totalParams } from './params.ts';
export type { ParameterBreakdown } from './params.ts';
export {
  attentionScoreFlopsPerToken,
  executedTrainingFlopsPerToken,
  forwardFlopsPerToken,
  meanAttendedKeys,
  megatronGptFlopsPerIteration,
  megatronTrainingFlopsPerToken,
  trainingFlopsPerToken,
} from './flops.ts';
export type { FlopsBreakdown, FlopsOptions } from './flops.ts';
export {
  getTrainingRecipe,
  modelStateBytes,
  trainingRecipes,
  trainingStateBytes,
} from './memory.ts';
export type { StateBytes, StateBytesOptions, TrainingRecipe, TrainingRecipeId } from './memory.ts';
export {
  activationBytes,
  activationBytesPerLayer,
  layerActivationParts,
  nonLayerActivationBytes,
} from './activations.ts';
export type { ActivationOptions, LayerActivationParts } from './activations.ts';
export { compareFigure, compareWithReported, nominalBand, shapesConfirmed } from './reported.ts';
export type { Agreement, FigureComparison, ReportedComparison } from './reported.ts';
export { describeLayer, layerGroups, modelReport, zooEntry } from './summary.ts';
export type { ModelReport, ZooEntry } from './summary.ts';
