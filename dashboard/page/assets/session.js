// A Dash request refused with 401 means the session has ended (signed out in another tab, or its
// token revoked): reload, and the server answers with the sign-in form instead of stale charts.
(function () {
  const originalFetch = window.fetch;
  window.fetch = function (input) {
    const url = String(typeof input === 'string' ? input : input.url);
    return originalFetch.apply(this, arguments).then(function (response) {
      if (response.status === 401 && url.indexOf('/_dash-') !== -1) {
        window.location.reload();
      }
      return response;
    });
  };
})();
