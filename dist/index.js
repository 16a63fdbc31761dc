import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{e as o}from"./chunks/chunk-DV2NK2PZ.js";process.exitCode=await o();
