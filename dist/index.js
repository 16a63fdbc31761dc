import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{za as o}from"./chunks/chunk-4TNNZ32L.js";process.exitCode=await o();
