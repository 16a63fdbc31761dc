import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{e as o}from"./chunks/chunk-TEKUQID4.js";import"./chunks/chunk-PF4XVDXA.js";process.exitCode=await o();
