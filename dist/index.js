import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{e as o}from"./chunks/chunk-ZFF4YZBZ.js";import"./chunks/chunk-34CPI5KT.js";import"./chunks/chunk-G27J34EY.js";import"./chunks/chunk-WLRMF6X2.js";import"./chunks/chunk-6ZVD3AIO.js";import"./chunks/chunk-3EZ7HTJV.js";process.exitCode=await o();
