import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{a as b}from"./chunk-RTULJBDA.js";import{a}from"./chunk-V6BMP7GC.js";import"./chunk-RCEP7QA4.js";import"./chunk-3EZ7HTJV.js";export{a as VERSION_ORDERS,b as decideVersionOrder};
