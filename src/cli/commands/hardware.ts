import type { Command } from 'commander';
// The catalog alone: the hardware barrel also loads the topology and its Zod schemas, which
// `cube hardware` does not use and which cost every call ~70 ms of CPU (bench/cli).
import {
  acceleratorToJson,
  getAccelerator,
  listAccelerators,
  standardServerOf,
} from '../../hardware/catalog/index.ts';
import type { Accelerator } from '../../hardware/index.ts';
import { printJson, renderTable, type CliOutput } from '../output.ts';

function showAccelerator(a: Accelerator): string {
  const server = standardServerOf(a);
  const p = a.peakTflops;
  const lines = [
    `${a.name} (${a.id}), ${a.vendor}`,
    `  memory        ${a.memoryGiB} GiB ${a.memoryType}, ${a.memoryBandwidthGBs} GB/s`,
    `  on-chip SRAM  ${a.onChipSramMiB} MiB`,
    `  dense peak    fp32 ${p.fp32}  tf32 ${p.tf32 ?? '-'}  bf16 ${p.bf16 ?? '-'}  fp16 ${p.fp16 ?? '-'}  fp8 ${p.fp8 ?? '-'}  int8 ${p.int8 ?? '-'}  fp4 ${p.fp4 ?? '-'} TFLOPS`,
    `  power         ${a.tdpWatts} W, ${a.formFactor}, ${a.dies} die${a.dies > 1 ? `s (${a.dieToDieGBs ?? '?'} GB/s die-to-die)` : ''}`,
    `  links         ${a.links.count} x ${a.links.kind} at ${a.links.gbsPerDirectionPerLink} GB/s per direction`,
    `  host          PCIe ${a.hostInterface.pcieGen}.0 x${a.hostInterface.pcieLanes} (${a.hostInterface.gbsPerDirection} GB/s per direction)${a.hostInterface.cxl ? ', CXL' : ''}`,
    `  server        ${server.name} (${server.id})`,
    '',
    'sources:',
  ];
  for (const [field, prov] of Object.entries(a.provenance)) {
    lines.push(
      prov.kind === 'published'
        ? `  ${field}: ${prov.source}${prov.note === undefined ? '' : ` (${prov.note})`}`
        : `  ${field}: estimated: ${prov.reasoning}`,
    );
  }
  return lines.join('\n');
}

export function registerHardwareCommands(program: Command, output: CliOutput): void {
  const hardware = program
    .command('hardware')
    .description('the accelerator catalog: memory, bandwidth, peak FLOPS, links, with sources')
    .option('--json', 'print the catalog as JSON')
    .enablePositionalOptions()
    .action((options: { json?: boolean }) => {
      const all = listAccelerators();
      if (options.json === true) {
        printJson(output, all.map(acceleratorToJson));
        return;
      }
      output.out(
        renderTable(
          ['id', 'vendor', 'memory GiB', 'GB/s', 'fp32', 'bf16', 'fp8', 'TDP W', 'links'],
          all.map((a) => [
            a.id,
            a.vendor,
            a.memoryGiB,
            a.memoryBandwidthGBs,
            a.peakTflops.fp32,
            a.peakTflops.bf16,
            a.peakTflops.fp8,
            a.tdpWatts,
            `${a.links.count}x${a.links.gbsPerDirectionPerLink} ${a.links.kind}`,
          ]),
        ),
      );
    });
  hardware
    .command('show')
    .description('one accelerator in full, with the source of every number')
    .argument('<id>', 'accelerator id')
    .option('--json', 'print as JSON')
    .action((id: string, options: { json?: boolean }) => {
      const a = getAccelerator(id, { field: 'hardware show <id>' });
      if (options.json === true) printJson(output, acceleratorToJson(a));
      else output.out(showAccelerator(a));
    });
}
