export { FolderSource, type FolderSourceOptions } from './folder-source.js';
