export type {
  Accelerator,
  AcceleratorLinks,
  HostInterface,
  NumberFormat,
  PeakTflops,
  Vendor,
} from './accelerator.ts';
export type { IntraServerFabric, NicSpec, ServerSpec } from './server.ts';
export type { Provenance } from './provenance.ts';
export { estimated, published } from './provenance.ts';
export {
  acceleratorToJson,
  getAccelerator,
  getServer,
  listAccelerators,
  listServers,
  standardServerOf,
} from './catalog/index.ts';
export * from './topology/index.ts';
