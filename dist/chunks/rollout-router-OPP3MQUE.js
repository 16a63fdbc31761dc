import { createRequire as __icCreateRequire } from 'node:module'; const require = __icCreateRequire(import.meta.url);
import{a}from"./chunk-TCMOAA72.js";import"./chunk-227L5W2T.js";import"./chunk-WIVAXDJO.js";import"./chunk-4TNNZ32L.js";export{a as rolloutRouter};
