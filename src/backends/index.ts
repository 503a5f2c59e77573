export type {
  ExecutionBackend,
  KillOptions,
  LaunchSpec,
  OutputStream,
  RankExit,
  RankHandle,
  RankLogSpec,
} from './execution-backend.ts';
export { LocalBackend, RotatingLog } from './local/index.ts';
