// Node built-ins the host uses, taken once (user code never sees `require`).
export const nodeProcess = process;
export const util = require("node:util");
export const vm = require("node:vm");
export const v8 = require("node:v8");
export const fs = require("node:fs");
