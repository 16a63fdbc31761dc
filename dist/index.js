import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{e as o}from"./chunks/chunk-RWRJA7TY.js";import"./chunks/chunk-EYODCY6U.js";import"./chunks/chunk-BVNS4CEX.js";import"./chunks/chunk-34CPI5KT.js";import"./chunks/chunk-3EZ7HTJV.js";process.exitCode=await o();
