// ES module style: `env` holds the profile's environment variables.
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (request.method === 'POST') {
      let body;
      try {
        body = await request.json();
      } catch {
        return Response.json({ error: 'send a JSON body' }, { status: 400 });
      }
      return Response.json({ greeting: `${env.GREETING}, ${body.name ?? 'stranger'}!` }, { status: 201 });
    }
    return Response.json({
      greeting: env.GREETING,
      stage: env.STAGE,
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
    });
  },
};
