// A Hono JSON API with the usual middleware (logger, cors, etag): the `apps` section's
// router workload.
import { Hono } from "hono";
import { cors } from "hono/cors";
import { etag } from "hono/etag";
import { logger } from "hono/logger";

const app = new Hono();
app.use("*", logger(() => {}), cors(), etag());
const users = Array.from({ length: 50 }, (_, i) => ({ id: i, name: `user ${i}`, roles: i % 3 ? ["reader"] : ["admin", "reader"] }));
app.get("/", (c) => c.json({ users: users.slice(0, 20), total: users.length, at: "2026-01-01T00:00:00Z" }));
app.get("/users/:id", (c) => {
  const user = users[Number(c.req.param("id"))];
  return user ? c.json(user) : c.json({ error: "not found" }, 404);
});
addEventListener("fetch", (event) => event.respondWith(app.fetch(event.request)));
