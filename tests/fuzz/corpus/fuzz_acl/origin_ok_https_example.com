https://example.com
alice
%u
alice