"use strict";
// Loaded by lib/hashing/statcheck.ts when present; thinlayer falls back to fs.lstatSync without it.
module.exports = require("./build/Release/statcheck.node");
