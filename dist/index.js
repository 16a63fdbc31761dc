import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{Ea as o}from"./chunks/chunk-2MVLWSVB.js";process.exitCode=await o();
