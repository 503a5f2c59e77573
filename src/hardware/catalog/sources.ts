/**
 * The documents the hardware catalog cites, one constant per document, so that an
 * accelerator and its server quote a source with the same words. Each names the document
 * precisely enough to find it (title, publisher, and where the figure sits).
 */

// NVIDIA
export const a100Datasheet =
  'NVIDIA A100 Tensor Core GPU datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf), SXM columns; dense figures are the ones without the asterisk';
export const ampereWhitepaper = 'NVIDIA A100 Tensor Core GPU Architecture whitepaper (2020)';
export const dgxA100Guide =
  'NVIDIA DGX A100 System Architecture whitepaper (WP-10083) and DGX A100 User Guide, hardware overview';
export const h100Datasheet =
  'NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100), SXM5 column; dense = half the with-sparsity figure';
export const hopperWhitepaper = 'NVIDIA H100 Tensor Core GPU Architecture whitepaper (2022)';
export const h800Datasheet =
  'NVIDIA H800 Tensor Core GPU datasheet (nvidia.cn, SXM column): same GH100 compute and HBM3 as H100 SXM5, NVLink 400 GB/s; dense = half the with-sparsity figure';
export const deepseekV3Insights =
  'DeepSeek-AI, "Insights into DeepSeek-V3: Scaling Challenges and Reflections on Hardware for AI Architectures" (ISCA 2025, arXiv 2505.09343), H800 node description';
export const h200Datasheet =
  'NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200), H200 SXM column; dense = half the with-sparsity figure';
export const dgxH200Guide = 'NVIDIA DGX H100/H200 User Guide, hardware overview (DGX H200)';
export const blackwellDatasheet =
  'NVIDIA Blackwell datasheet, HGX B200 (1,000 W) column, as tabulated at glennklockwood.com/garden/processors/B200; dense = half the with-sparsity figure';
export const dgxB200Guide =
  'NVIDIA DGX B200 User Guide, "Introduction to NVIDIA DGX B200 Systems" (docs.nvidia.com/dgx/dgxb200-user-guide)';
export const dgxB200Datasheet =
  'NVIDIA DGX B200 datasheet (nvidia.com/en-us/data-center/dgx-b200), per 8 GPUs';
export const blackwellTechBrief = 'NVIDIA Blackwell Architecture Technical Brief (2024)';
export const chipsAndCheeseB200 =
  'Chips and Cheese, "Nvidia\'s B200: Keeping the CUDA Juggernaut Rolling" (2025), measured cache hierarchy: 126 MB L2 across both dies';
export const ncclTuning =
  'NCCL tuning constants (src/graph/tuning.cc): NVLink base latency ~0.6 us per hop plus ~1 us launch';

// AMD
export const mi250xDatasheet =
  'AMD Instinct MI250X accelerator datasheet (amd.com, OAM; per package of two GCDs)';
export const rocmMi250Arch =
  'AMD ROCm documentation, "AMD Instinct MI250 microarchitecture" (rocm.docs.amd.com, reference/gpu-arch/mi250)';
export const mi250xHotChips =
  'AMD MI200 talk, Hot Chips 34 (2022), as reported by ServeTheHome ("AMD MI250X and Topologies Explained at HC34")';
export const frontierGuide =
  'OLCF Frontier User Guide (docs.olcf.ornl.gov/systems/frontier_user_guide.html), "Frontier Compute Nodes" and node diagram (HPE Cray EX235a)';
export const mi300xDatasheet =
  'AMD Instinct MI300X accelerator datasheet (amd.com, OAM); dense figures, sparsity quoted separately';
export const rocmMi300Arch =
  'AMD ROCm documentation, "AMD Instinct MI300 series microarchitecture" (rocm.docs.amd.com, conceptual/gpu-arch/mi300): 8 XCDs with 4 MB L2 each, 4 IODs, Infinity Cache, 8-GPU fully connected platform';
export const mi300xPlatform =
  'AMD Instinct MI300X Platform product page (amd.com): 8 x MI300X OAM on one universal baseboard, fully connected by Infinity Fabric, one 128 GB/s bidirectional link between every pair';
export const mlperfMi300xSystem =
  'MLCommons Inference v4.1 results, closed/AMD/systems/8xMI300X_2xEPYC-9374F.json: 8 x MI300X, 2 x EPYC 9374F, 1.5 TiB host memory, PCIe Gen5 x16 host links';
export const epycGenoaSpecs =
  'AMD EPYC 9654 product page and 4th Gen EPYC (Genoa) launch material (amd.com, Nov 2022)';

// Huawei
export const cannPlatformConfig =
  'Huawei CANN platform configuration data/platform_config/Ascend910B2.ini ([SoCInfo] ai_core_cnt=24, memory_size=68719476736, l2_size=201326592; [AICoreSpec] cube 16x16x16, cube_freq 1800 MHz), as quoted in public Ascend kernel tutorials';
export const giteeAscendDoc =
  'Gitee AI compute documentation, "Ascend 910B" (ai.gitee.com/docs/compute/clusters_gpu/ascend_gpu): 64 GB HBM2e, HCCS with 8 NPUs fully interconnected in one server';
export const hiascendA2Networking =
  'Huawei Ascend documentation, MindCluster Ascend Deployer "HCCN configuration" (hiascend.com): the Atlas 800T A2 has 8 NPU network ports, one per NPU, on the parameter-plane RoCE network';
export const ascend910HotChips =
  'Huawei, "DaVinci: A Scalable Architecture for Neural Network Computing", Hot Chips 31 (2019): Ascend 910 256 TFLOPS FP16 / 512 TOPS INT8, HCCS, RoCE';

// Biren
export const birenHotChips34 =
  'Biren, "BR100 GPGPU", Hot Chips 34 (2022), as reported by Chips and Cheese ("Hot Chips 34 - Biren\'s BR100") and TechPowerUp';
export const birenLaunch =
  'Biren BR100/BR104 launch figures (Aug 2022) as tabulated by Tom\'s Hardware, "Chinese Biren\'s New GPUs Have 77 Billion Transistors, 2 PFLOPS of AI Performance" (quoted without sparsity)';
export const birenBrief =
  'vendor product brief via Cube design brief (shared/design.md, "Hardware facts")';

// Generic
export const pcie4Spec =
  'PCI Express Base Specification 4.0: 16 GT/s per lane, 128b/130b, x16 = 31.5 GB/s per direction (rounded to 32)';
export const pcie5Spec =
  'PCI Express Base Specification 5.0: 32 GT/s per lane, 128b/130b, x16 = 63 GB/s per direction (rounded to 64)';
export const nicLatency =
  'NVIDIA Quantum/Quantum-2 InfiniBand switch datasheets plus ConnectX port-to-port latency';
