import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{a}from"./chunk-7A6T6OA2.js";import"./chunk-7O6E4674.js";import"./chunk-WIVAXDJO.js";import"./chunk-EFNRZOQR.js";export{a as rolloutRouter};
