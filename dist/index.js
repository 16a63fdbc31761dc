import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{za as o}from"./chunks/chunk-EFNRZOQR.js";process.exitCode=await o();
