// Types for eslint.purity.js (plain JS so eslint.config.js can import it).
export declare const impureModules: { group: string[]; message: string }[];
export declare const impureGlobals: { name: string; message: string }[];
export declare const impureSyntax: { selector: string; message: string }[];
