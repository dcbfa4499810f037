#!/usr/bin/env node
// Entry point for `thinlayer` (npm bin) and for the build commands Pulumi runs: loads the
// TypeScript CLI through tsx, so there is no build step to forget.
require("tsx/cjs");
require("./thinlayer.ts");
