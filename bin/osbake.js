#!/usr/bin/env node
// dist/bundle/ is made by `npm run build` (tsc, then esbuild: scripts/bundle.mjs).
import '../dist/bundle/main.js';
