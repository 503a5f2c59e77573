export { CubeError, describeWhere, errorCodes } from './cube-error.ts';
export type { CubeErrorCode, CubeErrorOptions, ErrorWhere } from './cube-error.ts';
export { nearestNames, unknownIdError } from './suggest.ts';
export {
  formatIssuePath,
  loadStructuredFile,
  parseStructuredText,
  parseYamlText,
  maxYamlAliasCount,
  schemaError,
} from './structured-file.ts';
export { allowedCpus, formatCpuList, parseCpuList, pinProcess } from './cpu-affinity.ts';
export { ensurePrivateDir } from './private-dir.ts';
export { pythonInterpreter } from './python-interpreter.ts';
export type { PythonInterpreterOptions } from './python-interpreter.ts';
export { buildInfo } from './build-info.ts';
export type { BuildInfo } from './build-info.ts';
export { registerProcessMetrics } from './process-metrics.ts';
