(function () {
  // GraphiQL's dialogs add a <style> element (scroll locking): it gets this
  // response's style nonce, so the policy needs no 'unsafe-inline'.
  var nonce = document.querySelector('style[nonce]').nonce;
  var createElement = document.createElement;
  document.createElement = function (name) {
    var element = createElement.apply(document, arguments);
    if (String(name).toLowerCase() === 'style') element.nonce = nonce;
    return element;
  };
  var httpUrl = location.origin + '/graphql';
  var wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql/ws';
  // The WebSocket carries no HTTP headers: graphql-transport-ws authenticates
  // in connection_init, so subscriptions use a client per Authorization value
  // taken from the headers editor of the operation being run.
  var current = null;
  function fetcherFor(authorization) {
    if (!current || current.authorization !== authorization) {
      var wsClient = graphqlWs.createClient({
        url: wsUrl,
        lazy: true,
        connectionParams: { Authorization: authorization }
      });
      current = {
        authorization: authorization,
        fetcher: GraphiQL.createFetcher({ url: httpUrl, wsClient: wsClient })
      };
    }
    return current.fetcher;
  }
  function fetcher(params, options) {
    var headers = (options && options.headers) || {};
    return fetcherFor(headers.Authorization || headers.authorization || '')(params, options);
  }
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultEditorToolsVisibility: true,
    defaultQuery: '# Sign in, then put the accessToken in Headers below as\n' +
      '# {"Authorization": "Bearer <accessToken>"}; subscriptions use it too.\n' +
      'mutation SignIn {\n  login(email: "admin@alawael.local", password: "alawael-dev-password") {\n    accessToken\n    expiresIn\n  }\n}\n'
  }));
})();
