export { LocalBackend } from './local-backend.ts';
export { RotatingLog } from './rotating-log.ts';
