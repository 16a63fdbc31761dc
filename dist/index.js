import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{e as o}from"./chunks/chunk-LDO6O4UO.js";import"./chunks/chunk-PF4XVDXA.js";process.exitCode=await o();
