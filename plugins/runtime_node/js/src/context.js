// The inbound request a piece of async work belongs to (console lines, fetch counting).
// Created at run time: async_hooks state is not part of the startup snapshot.
let storage = null;

export const als = {
  init(AsyncLocalStorage) {
    storage = new AsyncLocalStorage();
  },
  getStore() {
    return storage === null ? undefined : storage.getStore();
  },
  run(value, fn) {
    return storage === null ? fn() : storage.run(value, fn);
  },
};
