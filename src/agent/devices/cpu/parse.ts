/**
 * The processor's name from `/proc/cpuinfo` (`model name : ...`, x86) or its ARM equivalents
 * (`Model`, `Hardware`); null when the text names none.
 */
export function parseCpuModel(cpuinfo: string): string | null {
  for (const key of ['model name', 'Model', 'Hardware', 'cpu model']) {
    const match = new RegExp(`^${key}\\s*:\\s*(.+)$`, 'm').exec(cpuinfo);
    const name = match?.[1]?.trim();
    if (name !== undefined && name !== '') return name;
  }
  return null;
}
