import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{Va as o}from"./chunks/chunk-WSUZ4HGT.js";process.exitCode=await o();
