http://example.com
alice
%u
alice