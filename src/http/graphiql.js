(function () {
  var wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql/ws';
  function savedHeaders() {
    try { return JSON.parse(localStorage.getItem('graphiql:headers') || '{}'); } catch (e) { return {}; }
  }
  var wsClient = graphqlWs.createClient({
    url: wsUrl,
    lazy: true,
    connectionParams: function () {
      var h = savedHeaders();
      return { Authorization: h.Authorization || h.authorization || '' };
    }
  });
  var fetcher = GraphiQL.createFetcher({ url: location.origin + '/graphql', wsClient: wsClient });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultEditorToolsVisibility: true,
    defaultHeaders: '{\n  "Authorization": "Bearer <accessToken from the login mutation>"\n}',
    defaultQuery: 'mutation SignIn {\n  login(email: "admin@alawael.local", password: "alawael-dev-password") {\n    accessToken\n    expiresIn\n  }\n}\n'
  }));
})();
