import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{e as o}from"./chunks/chunk-AU5OTNXT.js";process.exitCode=await o();
