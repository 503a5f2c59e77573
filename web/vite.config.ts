import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The dashboard's bundle goes to web/dist, which the control plane serves at `/`
// (src/control/server/web-routes.ts). `npm run dev:web` proxies the API to a running
// control plane (CUBE_SERVER, default http://127.0.0.1:7600, where `cube up` listens).
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1024 },
  server: {
    proxy: { '/api': process.env.CUBE_SERVER ?? 'http://127.0.0.1:7600' },
  },
});
