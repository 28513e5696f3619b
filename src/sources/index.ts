export {
  type Clock,
  type FolderEvent,
  FolderSource,
  type FolderSourceOptions,
  type FolderWatcher,
  nodeWatcher,
  systemClock,
  type Timer,
} from './folder-source.js';
