import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{Ea as o}from"./chunks/chunk-RAPD2XYD.js";process.exitCode=await o();
