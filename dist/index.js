import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{e as o}from"./chunks/chunk-KSZ7W5NH.js";process.exitCode=await o();
